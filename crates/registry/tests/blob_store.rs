//! One contract for every blob store, run against each backend (Distribution's storage-driver suite, in small):
//! a local directory always; S3 on the server `CUSTOMS_TEST_S3` names (moto in CI) and Azure Blob on the one
//! `CUSTOMS_TEST_AZURITE` names (Azurite), each as `http://127.0.0.1:PORT/…/BUCKET` with the bucket or container
//! already made. Every run works under a prefix of its own, so runs share the bucket.

mod support;

use bytes::Bytes;
use customs_registry::digest::Digest;
use customs_registry::storage::{Assembly, BlobStore, StorageError};

fn body(bytes: &[u8], chunk: usize) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
    let chunks: Vec<_> = bytes.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    futures_util::stream::iter(chunks)
}

async fn collect(store: &BlobStore, digest: &Digest, range: Option<std::ops::Range<u64>>) -> Option<Vec<u8>> {
    use futures_util::StreamExt;
    let mut stream = store.get(digest, range).await.unwrap()?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    Some(out)
}

/// The contract: parts, assembly (several parts, and one part without a copy), publish, ranged reads, listing
/// and deletes; a body over its limit leaves nothing behind; a wrong digest publishes nothing.
async fn contract(store: BlobStore) {
    // 9 MiB + 1 MB in two parts: the first is larger than one multipart chunk (8 MiB; S3's floor is 5 MiB).
    let bytes: Vec<u8> = (0..(9u32 << 20) + 1_000_000)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let digest = Digest::of(&bytes);
    let (head, tail) = bytes.split_at(9 << 20);
    let first = store.write_part("u1", 0, body(head, 64 << 10), u64::MAX).await.unwrap();
    let second = store
        .write_part("u1", head.len() as u64, body(tail, 100_000), u64::MAX)
        .await
        .unwrap();
    assert_eq!((first.size, second.size), (head.len() as u64, tail.len() as u64));
    let staged = store.list_staging().await.unwrap();
    assert_eq!(staged.iter().filter(|o| o.upload_id() == Some("u1")).count(), 2, "{staged:?}");

    let parts = [first, second];
    let wrong = Digest::of(b"something else");
    assert!(matches!(
        store.assemble("u1", &parts, bytes.len() as u64, &wrong).await.unwrap(),
        Assembly::DigestMismatch(d) if d == digest
    ));
    assert_eq!(
        store.assemble("u1", &parts[1..], tail.len() as u64, &digest).await.unwrap(),
        Assembly::Incomplete
    );
    let Assembly::Verified(verified) = store.assemble("u1", &parts, bytes.len() as u64, &digest).await.unwrap() else {
        panic!("two contiguous parts with the right digest verify");
    };
    assert_eq!(store.size(&digest).await.unwrap(), None, "nothing is a blob before publish");
    store.publish(&verified, &digest).await.unwrap();
    store.delete_parts(&parts).await;
    assert_eq!(store.size(&digest).await.unwrap(), Some(bytes.len() as u64));
    assert!(collect(&store, &digest, None).await.unwrap() == bytes, "whole blob read back");
    let range = 8_388_000..8_389_000u64;
    assert_eq!(
        collect(&store, &digest, Some(range.clone())).await.unwrap(),
        bytes[range.start as usize..range.end as usize]
    );
    assert!(store.read_small(&digest, 1000).await.unwrap_err().contains("larger than"));
    let listed = store.list_blobs().await.unwrap();
    assert!(
        listed.iter().any(|(d, o)| d == &digest && o.size == bytes.len() as u64),
        "{listed:?}"
    );

    // One part: its digest was computed as it streamed, and publishing moves it.
    let small = b"{\"config\":true}";
    let part = store.write_part("u2", 0, body(small, 4), 1 << 20).await.unwrap();
    let small_digest = Digest::of(small);
    let Assembly::Verified(verified) = store.assemble("u2", &[part], small.len() as u64, &small_digest).await.unwrap() else {
        panic!("one part verifies");
    };
    store.publish(&verified, &small_digest).await.unwrap();
    assert_eq!(store.read_small(&small_digest, 1000).await.unwrap().as_deref(), Some(&small[..]));
    // Publishing the same content again (a second upload of it) keeps the stored blob.
    let again = store.write_part("u3", 0, body(small, 100), 1 << 20).await.unwrap();
    let Assembly::Verified(verified) = store.assemble("u3", &[again], small.len() as u64, &small_digest).await.unwrap() else {
        panic!("the second upload verifies");
    };
    store.publish(&verified, &small_digest).await.unwrap();
    assert_eq!(store.read_small(&small_digest, 1000).await.unwrap().as_deref(), Some(&small[..]));

    // Over the limit: refused, and the half-written part is gone.
    let err = store
        .write_part("u4", 0, body(&bytes[..3 << 20], 1 << 20), 1 << 20)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::TooLarge(_)), "{err}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while store.list_staging().await.unwrap().iter().any(|o| o.upload_id() == Some("u4")) {
        assert!(std::time::Instant::now() < deadline, "an aborted part stays listed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    for d in [&digest, &small_digest] {
        assert!(store.delete_blob(d).await.unwrap());
        assert_eq!(store.size(d).await.unwrap(), None);
        assert!(collect(&store, d, None).await.is_none());
    }
}

fn run(store: BlobStore) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(contract(store));
}

#[test]
fn a_local_directory_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    run(BlobStore::local(dir.path(), true).unwrap());
}

#[test]
fn s3_keeps_the_contract() {
    let Some(config) = support::object_storage("s3") else { return };
    run(BlobStore::from_config(&config).unwrap());
}

#[test]
fn azure_blob_keeps_the_contract() {
    let Some(config) = support::object_storage("azure") else { return };
    run(BlobStore::from_config(&config).unwrap());
}

#[test]
fn a_missing_bucket_is_an_error_naming_it_not_a_hang() {
    let Some(mut config) = support::object_storage("s3") else { return };
    config.bucket = Some("customs-no-such-bucket".into());
    let store = BlobStore::from_config(&config).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = runtime
        .block_on(store.write_part("u", 0, body(b"x", 1), 10))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("customs-no-such-bucket") || err.to_lowercase().contains("bucket"),
        "{err}"
    );
}
