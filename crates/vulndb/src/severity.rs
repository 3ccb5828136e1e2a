//! CVSS scores by CVE from the sources that rate vulnerabilities for everyone: NVD's JSON feeds (API 2.0 and
//! the retired 1.1 shape mirrors still serve) and CVE JSON 5 records (the CNA's `metrics` and CISA's ADP
//! container, as `cisagov/vulnrichment` publishes them).
//!
//! The NVD feeds are read as a stream, one CVE at a time, so a year's feed never sits in memory whole.

use std::io::Read;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::model::Severity;

/// One CVSS score of a CVE, with who gave it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The feed it came from: `nvd` or `cve5`.
    pub source: String,
    /// Who scored it: `nvd@nist.gov`, a CNA (`hackerone`, `security@debian.org`), `CISA-ADP`.
    pub provider: String,
    /// NVD's `Primary` (NVD's own analysis) or `Secondary` (a CNA's score relayed); `cna` or `adp` in CVE 5.
    #[serde(rename = "type")]
    pub kind: String,
    /// CVSS version: `4.0`, `3.1`, `3.0`, `2.0`.
    pub version: String,
    /// The vector string.
    pub vector: String,
    /// The base score.
    pub score: f64,
    /// The base score's severity (CVSS v2 has no CRITICAL).
    pub severity: Severity,
}

impl Score {
    /// Orders CVSS versions newest first (`4.0` before `3.1` before `3.0` before `2.0`).
    fn version_rank(&self) -> u8 {
        match self.version.as_str() {
            "4.0" => 0,
            "3.1" => 1,
            "3.0" => 2,
            _ => 3,
        }
    }

    /// Who this score is, as a finding's `severity_source` names it: `nvd`, `cna:<name>`, `cisa-adp`,
    /// `nvd-secondary:<provider>`.
    pub fn label(&self) -> String {
        match (self.source.as_str(), self.kind.as_str()) {
            ("nvd", "Primary") => "nvd".into(),
            ("nvd", _) => format!("nvd-secondary:{}", self.provider),
            (_, "adp") if self.provider.eq_ignore_ascii_case("CISA-ADP") => "cisa-adp".into(),
            (_, "adp") => format!("adp:{}", self.provider),
            _ => format!("cna:{}", self.provider),
        }
    }
}

/// The score that rates a CVE when the matched record has no severity of its own: NVD's Primary score
/// (CVSS 4.0, 3.1, 3.0, 2.0 in that order), else the CNA's score in CVE 5, else CISA ADP's, else a
/// Secondary score NVD relays.
pub fn preferred(scores: &[Score]) -> Option<&Score> {
    let tier = |s: &Score| match (s.source.as_str(), s.kind.as_str()) {
        ("nvd", "Primary") => 0,
        ("cve5", "cna") => 1,
        ("cve5", _) => 2,
        _ => 3,
    };
    scores.iter().min_by_key(|s| (tier(s), s.version_rank()))
}

/// One CVE's scores from one record.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    /// The CVE.
    pub cve: String,
    /// The record's last modification (RFC 3339 or NVD's local time form); newer records replace older ones.
    pub modified: String,
    /// Every score the record holds.
    pub scores: Vec<Score>,
}

fn severity_of(label: Option<&str>, score: f64, version: &str) -> Severity {
    if let Some(s) = label.and_then(Severity::from_label) {
        return s;
    }
    // CVSS's own bands, for records that give a score but no label.
    match score {
        _ if version.starts_with('2') && score >= 7.0 => Severity::High,
        s if s >= 9.0 => Severity::Critical,
        s if s >= 7.0 => Severity::High,
        s if s >= 4.0 => Severity::Medium,
        s if s > 0.0 => Severity::Low,
        _ => Severity::Unknown,
    }
}

/// Whether a document's first bytes are an NVD feed (2.0 or 1.1).
pub(crate) fn looks_like_nvd(head: &str) -> bool {
    (head.contains("\"NVD_CVE\"") && head.contains("\"vulnerabilities\""))
        || (head.contains("\"CVE_data_format\"") || head.contains("\"CVE_Items\""))
}

/// Whether a JSON document is a CVE JSON 5 record.
pub(crate) fn looks_like_cve5(head: &str) -> bool {
    // Keys come in any order, and a CNA container can be longer than the head read.
    head.contains("\"CVE_RECORD\"") || head.contains("\"cveMetadata\"") || (head.contains("\"containers\"") && head.contains("\"cna\""))
}

// ---- NVD API 2.0 -------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Nvd2Item {
    cve: Nvd2Cve,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Nvd2Cve {
    id: String,
    #[serde(default)]
    last_modified: String,
    #[serde(default)]
    metrics: Nvd2Metrics,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Nvd2Metrics {
    #[serde(default)]
    cvss_metric_v40: Vec<Nvd2Metric>,
    #[serde(default)]
    cvss_metric_v31: Vec<Nvd2Metric>,
    #[serde(default)]
    cvss_metric_v30: Vec<Nvd2Metric>,
    #[serde(default)]
    cvss_metric_v2: Vec<Nvd2Metric>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Nvd2Metric {
    #[serde(default)]
    source: String,
    #[serde(default, rename = "type")]
    kind: String,
    cvss_data: CvssData,
    /// CVSS v2 puts the severity beside `cvssData`.
    #[serde(default)]
    base_severity: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CvssData {
    #[serde(default)]
    version: String,
    #[serde(default)]
    vector_string: String,
    base_score: f64,
    #[serde(default)]
    base_severity: Option<String>,
}

impl Nvd2Cve {
    fn into_scored(self) -> Scored {
        let m = self.metrics;
        let mut scores = Vec::new();
        for (fallback_version, list) in [
            ("4.0", m.cvss_metric_v40),
            ("3.1", m.cvss_metric_v31),
            ("3.0", m.cvss_metric_v30),
            ("2.0", m.cvss_metric_v2),
        ] {
            for metric in list {
                let version = if metric.cvss_data.version.is_empty() {
                    fallback_version.to_string()
                } else {
                    metric.cvss_data.version.clone()
                };
                let label = metric.cvss_data.base_severity.as_deref().or(metric.base_severity.as_deref());
                scores.push(Score {
                    source: "nvd".into(),
                    provider: metric.source,
                    kind: if metric.kind.is_empty() { "Primary".into() } else { metric.kind },
                    severity: severity_of(label, metric.cvss_data.base_score, &version),
                    version,
                    vector: metric.cvss_data.vector_string,
                    score: metric.cvss_data.base_score,
                });
            }
        }
        Scored {
            cve: self.id,
            modified: self.last_modified,
            scores,
        }
    }
}

// ---- NVD 1.1 -----------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Nvd11Item {
    cve: Nvd11Cve,
    #[serde(default)]
    impact: Nvd11Impact,
    #[serde(default)]
    last_modified_date: String,
}

#[derive(Deserialize)]
struct Nvd11Cve {
    #[serde(rename = "CVE_data_meta")]
    meta: Nvd11Meta,
}

#[derive(Deserialize)]
struct Nvd11Meta {
    #[serde(rename = "ID")]
    id: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Nvd11Impact {
    #[serde(default)]
    base_metric_v3: Option<Nvd11V3>,
    #[serde(default)]
    base_metric_v2: Option<Nvd11V2>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Nvd11V3 {
    cvss_v3: CvssData,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Nvd11V2 {
    cvss_v2: CvssData,
    #[serde(default)]
    severity: Option<String>,
}

impl Nvd11Item {
    fn into_scored(self) -> Scored {
        let mut scores = Vec::new();
        // The 1.1 feeds carry NVD's own analysis only.
        let mut push = |data: CvssData, label: Option<String>, fallback: &str| {
            let version = if data.version.is_empty() {
                fallback.to_string()
            } else {
                data.version
            };
            scores.push(Score {
                source: "nvd".into(),
                provider: "nvd@nist.gov".into(),
                kind: "Primary".into(),
                severity: severity_of(data.base_severity.as_deref().or(label.as_deref()), data.base_score, &version),
                version,
                vector: data.vector_string,
                score: data.base_score,
            });
        };
        if let Some(v3) = self.impact.base_metric_v3 {
            push(v3.cvss_v3, None, "3.0");
        }
        if let Some(v2) = self.impact.base_metric_v2 {
            push(v2.cvss_v2, v2.severity, "2.0");
        }
        Scored {
            cve: self.cve.meta.id,
            modified: self.last_modified_date,
            scores,
        }
    }
}

/// Reads an NVD feed (2.0 `vulnerabilities` or 1.1 `CVE_Items`) from `reader`, one CVE at a time.
pub(crate) fn read_nvd(reader: impl Read, each: &mut dyn FnMut(Scored)) -> Result<usize, String> {
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 16, reader));
    let count = Feed { each }
        .deserialize(&mut de)
        .map_err(|e| format!("not a readable NVD feed: {e}"))?;
    de.end().map_err(|e| format!("trailing data after the NVD feed: {e}"))?;
    Ok(count)
}

struct Feed<'a> {
    each: &'a mut dyn FnMut(Scored),
}

impl<'de> DeserializeSeed<'de> for Feed<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Feed<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an NVD feed object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut count = 0;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "vulnerabilities" => {
                    count += map.next_value_seed(Items::<Nvd2Item> {
                        each: &mut |i: Nvd2Item| (self.each)(i.cve.into_scored()),
                        _item: std::marker::PhantomData,
                    })?
                }
                "CVE_Items" => {
                    count += map.next_value_seed(Items::<Nvd11Item> {
                        each: &mut |i: Nvd11Item| (self.each)(i.into_scored()),
                        _item: std::marker::PhantomData,
                    })?
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(count)
    }
}

/// A JSON array read element by element.
struct Items<'a, T> {
    each: &'a mut dyn FnMut(T),
    _item: std::marker::PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Items<'_, T> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Items<'_, T> {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of CVE items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut n = 0;
        while let Some(item) = seq.next_element::<T>()? {
            (self.each)(item);
            n += 1;
        }
        Ok(n)
    }
}

// ---- CVE JSON 5 --------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cve5 {
    cve_metadata: Cve5Meta,
    #[serde(default)]
    containers: Cve5Containers,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cve5Meta {
    cve_id: String,
    #[serde(default)]
    date_updated: Option<String>,
    #[serde(default)]
    assigner_short_name: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

#[derive(Default, Deserialize)]
struct Cve5Containers {
    #[serde(default)]
    cna: Option<Cve5Container>,
    #[serde(default)]
    adp: Vec<Cve5Container>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cve5Container {
    #[serde(default)]
    provider_metadata: Option<Cve5Provider>,
    #[serde(default)]
    metrics: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cve5Provider {
    #[serde(default)]
    short_name: Option<String>,
}

/// Parses one CVE JSON 5 record; `None` for a rejected CVE.
pub(crate) fn from_cve5(bytes: &[u8]) -> Result<Option<Scored>, String> {
    let record: Cve5 = serde_json::from_slice(bytes).map_err(|e| format!("not a CVE JSON 5 record: {e}"))?;
    if record.cve_metadata.state.as_deref() == Some("REJECTED") {
        return Ok(None);
    }
    let mut scores = Vec::new();
    let containers = record.containers;
    let assigner = record.cve_metadata.assigner_short_name.clone().unwrap_or_default();
    let mut take = |container: Cve5Container, kind: &str| {
        let provider = container
            .provider_metadata
            .and_then(|p| p.short_name)
            .unwrap_or_else(|| assigner.clone());
        for metric in container.metrics {
            for (key, version) in [("cvssV4_0", "4.0"), ("cvssV3_1", "3.1"), ("cvssV3_0", "3.0"), ("cvssV2_0", "2.0")] {
                let Some(data) = metric.get(key) else { continue };
                let Ok(data) = serde_json::from_value::<CvssData>(data.clone()) else {
                    continue;
                };
                scores.push(Score {
                    source: "cve5".into(),
                    provider: provider.clone(),
                    kind: kind.into(),
                    severity: severity_of(data.base_severity.as_deref(), data.base_score, version),
                    version: version.into(),
                    vector: data.vector_string,
                    score: data.base_score,
                });
            }
        }
    };
    if let Some(cna) = containers.cna {
        take(cna, "cna");
    }
    for adp in containers.adp {
        take(adp, "adp");
    }
    Ok(Some(Scored {
        cve: record.cve_metadata.cve_id,
        modified: record.cve_metadata.date_updated.unwrap_or_default(),
        scores,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_nvd_2_0_and_1_1_feeds() {
        let v2 = br#"{"format":"NVD_CVE","version":"2.0","vulnerabilities":[
            {"cve":{"id":"CVE-2023-38545","lastModified":"2024-10-25T00:00:00.000","configurations":[{"nodes":[]}],"metrics":{
              "cvssMetricV31":[{"source":"nvd@nist.gov","type":"Primary","cvssData":{"version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H","baseScore":9.8,"baseSeverity":"CRITICAL"}},
                               {"source":"134c704f-9b21-4f2e-91b3-4a467353bcc0","type":"Secondary","cvssData":{"version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H","baseScore":8.8,"baseSeverity":"HIGH"}}],
              "cvssMetricV2":[{"source":"nvd@nist.gov","type":"Primary","cvssData":{"version":"2.0","vectorString":"AV:N/AC:L/Au:N/C:P/I:N/A:N","baseScore":5.0},"baseSeverity":"MEDIUM"}]}}},
            {"cve":{"id":"CVE-2000-1","metrics":{}}}]}"#;
        let mut got = Vec::new();
        assert_eq!(read_nvd(&v2[..], &mut |s| got.push(s)).unwrap(), 2);
        let best = preferred(&got[0].scores).unwrap();
        assert_eq!((best.label().as_str(), best.score, best.severity), ("nvd", 9.8, Severity::Critical));
        assert_eq!(got[0].scores.len(), 3);
        assert_eq!(got[0].scores[2].severity, Severity::Medium);
        assert!(got[1].scores.is_empty());

        let v11 = br#"{"CVE_data_format":"MITRE","CVE_Items":[{"cve":{"CVE_data_meta":{"ID":"CVE-2018-0001"}},
            "impact":{"baseMetricV3":{"cvssV3":{"version":"3.0","vectorString":"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H","baseScore":9.8,"baseSeverity":"CRITICAL"}},
                      "baseMetricV2":{"cvssV2":{"version":"2.0","vectorString":"AV:N/AC:L/Au:N/C:P/I:P/A:P","baseScore":7.5},"severity":"HIGH"}},
            "lastModifiedDate":"2018-02-23T02:29Z"}]}"#;
        let mut got = Vec::new();
        read_nvd(&v11[..], &mut |s| got.push(s)).unwrap();
        let best = preferred(&got[0].scores).unwrap();
        assert_eq!((best.version.as_str(), best.score), ("3.0", 9.8));
        assert_eq!(got[0].scores[1].severity, Severity::High);
        assert!(read_nvd(&b"{\"vulnerabilities\": [1]}"[..], &mut |_| {}).is_err());
    }

    #[test]
    fn cve5_keeps_cna_and_adp_scores_and_prefers_the_cna() {
        let record = br#"{"dataType":"CVE_RECORD","cveMetadata":{"cveId":"CVE-2024-1","state":"PUBLISHED","assignerShortName":"hackerone","dateUpdated":"2024-10-17T21:16:30.994Z"},
          "containers":{"cna":{"providerMetadata":{"shortName":"hackerone"},"metrics":[{"cvssV3_1":{"version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N","baseScore":5.3,"baseSeverity":"MEDIUM"}}]},
            "adp":[{"providerMetadata":{"shortName":"CISA-ADP"},"metrics":[{"cvssV3_1":{"version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H","baseScore":8.8,"baseSeverity":"HIGH"}},{"other":{"type":"ssvc"}}]}]}}"#;
        let scored = from_cve5(record).unwrap().unwrap();
        assert_eq!(scored.scores.len(), 2);
        assert_eq!(preferred(&scored.scores).unwrap().label(), "cna:hackerone");
        assert_eq!(preferred(&scored.scores[1..]).unwrap().label(), "cisa-adp");
        let rejected = br#"{"cveMetadata":{"cveId":"CVE-2024-2","state":"REJECTED"},"containers":{}}"#;
        assert_eq!(from_cve5(rejected).unwrap(), None);
    }
}
