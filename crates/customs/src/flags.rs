//! Every flag from three places, in this order: the command line, an environment variable `CUSTOMS_<FLAG>`
//! (`CUSTOMS_REGISTRY_<FLAG>` under `customs registry`), then the project file's `[flags]` (Trivy's
//! `trivy.yaml`), then the built-in default.
//!
//! Both layers are clap's own: the variable is the argument's `env`, the file's value becomes its default, so
//! clap's precedence (command line, then env, then default) is the documented one, and `--help` shows the
//! variable of each flag.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::builder::BoolishValueParser;
use clap::{Arg, ArgAction, Command};
use serde_json::Value;

/// The commands whose flags the project file may set.
pub const CONFIGURABLE: [&str; 5] = ["scan", "gate", "secrets", "lint", "sbom"];

/// Environment variables customs reads that are no flag's: a flag's variable must not take one of these names.
#[cfg(test)]
const RESERVED_ENV: [&str; 9] = [
    "CUSTOMS_PROGRESS_DELAY_MS",
    "CUSTOMS_LOG",
    "CUSTOMS_NOTIFY_URL",
    "CUSTOMS_NOTIFY_FORMAT",
    "CUSTOMS_REGISTRY_PASSWORD",
    "CUSTOMS_TEST_IMAGES",
    "CUSTOMS_SHARED_DATA",
    "CUSTOMS_REQUIRE_ALL",
    "CUSTOMS_JUNIT_XSD",
];

/// Gives every long flag of `cmd` and its subcommands an environment variable, unless it names one already.
/// Switches (`--ignore-unfixed`) read `1`, `true`, `yes`, `on` and `0`, `false`, `no`, `off`.
pub fn with_env(cmd: Command) -> Command {
    with_env_prefixed(cmd, "CUSTOMS_")
}

fn with_env_prefixed(cmd: Command, prefix: &str) -> Command {
    let cmd = cmd.mut_args(|arg| env_for(arg, prefix));
    let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
    names.iter().fold(cmd, |cmd, name| {
        // The registry is a service of its own: its flags read CUSTOMS_REGISTRY_<FLAG>.
        let prefix = if prefix == "CUSTOMS_" && name == "registry" {
            "CUSTOMS_REGISTRY_"
        } else {
            prefix
        };
        cmd.mut_subcommand(name, |sub| with_env_prefixed(sub, prefix))
    })
}

fn env_for(arg: Arg, prefix: &str) -> Arg {
    let Some(long) = arg.get_long() else { return arg };
    if arg.get_env().is_some() || arg.is_positional() || matches!(long, "help" | "version") {
        return arg;
    }
    let name = format!("{prefix}{}", long.to_ascii_uppercase().replace('-', "_"));
    let is_switch = matches!(arg.get_action(), ArgAction::SetTrue);
    let arg = arg.env(name);
    if is_switch {
        arg.value_parser(BoolishValueParser::new())
    } else {
        arg
    }
}

/// The project file for this command line: `--policy FILE` (or `--policy=FILE`), else `CUSTOMS_POLICY`, else
/// `customs.toml`/`customs.yaml`/`.customs.yaml` in the current folder; `None` for commands it does not configure.
pub fn project_file(args: &[OsString]) -> Option<PathBuf> {
    let words: Vec<&str> = args.iter().skip(1).filter_map(|a| a.to_str()).collect();
    let command = words
        .iter()
        .enumerate()
        .find(|&(i, w)| !w.starts_with('-') && (i == 0 || words[i - 1] != "--policy"))
        .map(|(_, w)| w)?;
    if !CONFIGURABLE.contains(command) && *command != "exclusions" {
        return None;
    }
    let given = words.iter().enumerate().find_map(|(i, w)| match w.strip_prefix("--policy") {
        Some("") => words.get(i + 1).map(PathBuf::from),
        Some(v) => v.strip_prefix('=').map(PathBuf::from),
        None => None,
    });
    given
        .or_else(|| std::env::var_os("CUSTOMS_POLICY").filter(|v| !v.is_empty()).map(PathBuf::from))
        .or_else(|| customs_policy::PolicyFile::find(std::path::Path::new(".")))
}

/// Makes the file's `[flags]` the defaults of `cmd`'s subcommands. A key no command has, a table that names no
/// command, a list for a flag that takes one value, or a gate flag the file's `[gate]` also sets, is an error
/// naming the file.
pub fn with_file_defaults(mut cmd: Command, file: &customs_policy::PolicyFile, shown: &str) -> Result<Command> {
    let mut everywhere = Vec::new();
    for (key, value) in &file.flags {
        match value {
            Value::Object(_) if !CONFIGURABLE.contains(&key.as_str()) => bail!(
                "{shown}: [flags.{key}]: no such command; flags can be set for {}",
                CONFIGURABLE.join(", ")
            ),
            Value::Object(_) => {}
            _ => everywhere.push((key.as_str(), value)),
        }
    }
    let mut applied = vec![false; everywhere.len()];
    for name in CONFIGURABLE {
        let section: Vec<(&str, &Value)> = match file.flags.get(name) {
            Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            _ => Vec::new(),
        };
        let Some(sub) = cmd.find_subcommand(name) else { continue };
        let mut defaults: Vec<(String, Vec<String>)> = Vec::new();
        for (i, (key, value)) in everywhere.iter().enumerate() {
            if section.iter().any(|(k, _)| long_name(k) == long_name(key)) {
                continue; // the command's own table wins
            }
            if let Some(arg) = find_flag(sub, key) {
                applied[i] = true;
                defaults.push((arg.get_id().to_string(), values(arg, value, &format!("{shown}: [flags] {key}"))?));
            }
        }
        for (key, value) in &section {
            let place = format!("{shown}: [flags.{name}] {key}");
            let Some(arg) = find_flag(sub, key) else {
                bail!(
                    "{place}: `customs {name}` has no flag --{} (`customs {name} --help` lists them)",
                    long_name(key)
                );
            };
            if name == "gate" {
                let snake = long_name(key).replace('-', "_");
                let policy_key = if snake == "no_secrets" { "secrets".to_string() } else { snake };
                if file.gate.keys_set().contains(&policy_key.as_str()) {
                    bail!("{place}: [gate] {policy_key} sets it too; keep one of them");
                }
            }
            defaults.push((arg.get_id().to_string(), values(arg, value, &place)?));
        }
        cmd = cmd.mut_subcommand(name, |mut sub| {
            for (id, vals) in defaults {
                sub = sub.mut_arg(id, |a| a.default_values(vals));
            }
            sub
        });
    }
    if let Some(i) = applied.iter().position(|a| !a) {
        bail!(
            "{shown}: [flags] {}: none of {} has --{}",
            everywhere[i].0,
            CONFIGURABLE.join(", "),
            long_name(everywhere[i].0)
        );
    }
    Ok(cmd)
}

/// `skip_dirs` and `skip-dirs` are the same flag.
fn long_name(key: &str) -> String {
    key.trim_start_matches("--").replace('_', "-")
}

fn find_flag<'c>(cmd: &'c Command, key: &str) -> Option<&'c Arg> {
    let long = long_name(key);
    cmd.get_arguments()
        .find(|a| a.get_long() == Some(long.as_str()) && !matches!(long.as_str(), "help" | "version"))
}

/// The command-line words a file value stands for.
fn values(arg: &Arg, value: &Value, place: &str) -> Result<Vec<String>> {
    let id = arg.get_id().as_str();
    let switch = matches!(arg.get_action(), ArgAction::SetTrue);
    let many = matches!(arg.get_action(), ArgAction::Append) || arg.get_value_delimiter().is_some();
    let scalar = |v: &Value| -> Result<String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => bail!("{place}: use a string, a number, a boolean or a list of them"),
        }
    };
    match value {
        Value::Bool(_) if switch => Ok(vec![scalar(value)?]),
        _ if switch => bail!("{place}: --{} is a switch: use true or false", arg.get_long().unwrap_or(id)),
        Value::Array(list) if many => list.iter().map(scalar).collect(),
        Value::Array(list) if list.len() == 1 => Ok(vec![scalar(&list[0])?]),
        Value::Array(_) => bail!("{place}: --{} takes one value, not a list", arg.get_long().unwrap_or(id)),
        _ => Ok(vec![scalar(value)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn all_env(cmd: &Command, path: &str, out: &mut Vec<(String, String)>) {
        for a in cmd.get_arguments() {
            if let (Some(long), Some(env)) = (a.get_long(), a.get_env()) {
                out.push((format!("{path} --{long}"), env.to_string_lossy().into_owned()));
            }
        }
        for s in cmd.get_subcommands() {
            all_env(s, &format!("{path} {}", s.get_name()), out);
        }
    }

    #[test]
    fn every_long_flag_has_a_variable_and_none_takes_a_reserved_name() {
        let cmd = with_env(crate::Cli::command());
        let mut envs = Vec::new();
        all_env(&cmd, "customs", &mut envs);
        let mut missing = Vec::new();
        fn longs(cmd: &Command, path: &str, out: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                if let Some(l) = a.get_long()
                    && !matches!(l, "help" | "version")
                    && a.get_env().is_none()
                {
                    out.push(format!("{path} --{l}"));
                }
            }
            for s in cmd.get_subcommands() {
                longs(s, &format!("{path} {}", s.get_name()), out);
            }
        }
        longs(&cmd, "customs", &mut missing);
        assert!(missing.is_empty(), "flags without a variable: {missing:?}");
        for (flag, env) in &envs {
            assert!(env.starts_with("CUSTOMS_"), "{flag}: {env}");
            assert!(
                !RESERVED_ENV.contains(&env.as_str()) || env == "CUSTOMS_REGISTRY_PASSWORD",
                "{flag} takes {env}"
            );
        }
        // The same variable on two flags of one command would set both.
        let mut seen = std::collections::BTreeMap::new();
        for (flag, env) in &envs {
            let command = flag.rsplit_once(" --").unwrap().0.to_string();
            if let Some(other) = seen.insert((command, env.clone()), flag.clone()) {
                panic!("{flag} and {other} share {env}");
            }
        }
        let find = |f: &str| envs.iter().find(|(flag, _)| flag == f).map(|(_, e)| e.as_str());
        assert_eq!(find("customs scan --skip-dirs"), Some("CUSTOMS_SKIP_DIRS"));
        assert_eq!(find("customs gate --ignore-unfixed"), Some("CUSTOMS_IGNORE_UNFIXED"));
        assert_eq!(find("customs registry serve --listen"), Some("CUSTOMS_REGISTRY_LISTEN"));
        assert_eq!(find("customs secrets --config"), Some("CUSTOMS_SECRET_CONFIG"));
        assert_eq!(find("customs lint --config"), Some("CUSTOMS_LINT_CONFIG"));
    }

    #[test]
    fn the_project_file_is_found_for_the_commands_it_configures() {
        let args = |s: &str| s.split(' ').map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            project_file(&args("customs scan img --policy p.toml")),
            Some(PathBuf::from("p.toml"))
        );
        assert_eq!(
            project_file(&args("customs gate --policy=q.yaml img")),
            Some(PathBuf::from("q.yaml"))
        );
        assert_eq!(project_file(&args("customs registry serve --policy p.toml")), None);
        assert_eq!(project_file(&args("customs db status")), None);
        assert_eq!(project_file(&args("customs --policy p.toml lint")), Some(PathBuf::from("p.toml")));
    }
}
