//! For every rule: a Dockerfile that breaks it (the rule fires on the expected line) and one that
//! keeps it (the rule stays silent). A rule without a case fails `every_rule_has_a_case`.

use customs_dockerfile::{LintConfig, LintContext, RULES, lint};

struct Case {
    rule: &'static str,
    /// Config YAML for rules that need parameters.
    config: &'static str,
    /// Fires on this line of `bad`.
    line: usize,
    bad: &'static str,
    good: &'static str,
}

fn cases() -> Vec<Case> {
    let c = |rule, line, bad, good| Case {
        rule,
        config: "",
        line,
        bad,
        good,
    };
    let with = |rule, config, line, bad, good| Case {
        rule,
        config,
        line,
        bad,
        good,
    };
    vec![
        c("CP001", 1, "FROM alpine:3.20\nRUN echo hi\n", "FROM alpine:3.20\nUSER 1000\n"),
        c(
            "CP002",
            1,
            "FROM alpine:3.20\nUSER 1000\n",
            "FROM alpine:3.20@sha256:0000000000000000000000000000000000000000000000000000000000000000\nUSER 1000\n",
        ),
        c(
            "CP003",
            2,
            "FROM alpine:3.20\nADD https://example.org/tool.tgz /opt/\nUSER 1000\n",
            "FROM alpine:3.20\nADD --checksum=sha256:abc https://example.org/tool.tgz /opt/\nUSER 1000\n",
        ),
        c(
            "CP004",
            2,
            "FROM alpine:3.20\nENV DB_PASSWORD=hunter2secret\nUSER 1000\n",
            "FROM alpine:3.20\nENV DB_PASSWORD_FILE=/run/secrets/db\nUSER 1000\n",
        ),
        c(
            "CP005",
            2,
            "FROM alpine:3.20\nRUN wget -qO- https://example.org/install.sh | sh\nUSER 1000\n",
            "FROM alpine:3.20\nRUN wget -q https://example.org/install.sh && sha256sum -c sums && sh install.sh\nUSER 1000\n",
        ),
        c(
            "CP007",
            2,
            "FROM alpine:3.20\nCOPY .env /app/.env\nUSER 1000\n",
            "FROM alpine:3.20\nCOPY .env.example /app/.env.example\nUSER 1000\n",
        ),
        c(
            "CP008",
            2,
            "FROM golang:1.23\nRUN go build -o /app .\nUSER 1000\n",
            "FROM golang:1.23 AS build\nRUN go build -o /app .\nFROM alpine:3.20\nCOPY --from=build /app /app\nUSER 1000\n",
        ),
        c(
            "CP009",
            3,
            "FROM alpine:3.20\nCOPY id_rsa /root/.ssh/id_rsa\nRUN git clone git@example.org:x.git && rm /root/.ssh/id_rsa\nUSER 1000\n",
            "FROM alpine:3.20\nRUN --mount=type=secret,id=ssh git clone git@example.org:x.git\nUSER 1000\n",
        ),
        c(
            "CP010",
            3,
            "FROM alpine:3.20\nRUN apk add --no-cache curl=8.0 \\\n\nUSER 1000\n",
            "FROM alpine:3.20\nRUN apk add --no-cache curl=8.0\n\nUSER 1000\n",
        ),
        c(
            "CP011",
            1,
            "FROM alpine:3.20\nUSER 1000\n",
            "FROM alpine:3.20\nHEALTHCHECK CMD wget -q --spider http://localhost:8080/ || exit 1\nUSER 1000\n",
        ),
        c(
            "CP012",
            2,
            "FROM alpine:3.20\nEXPOSE 8080 22/tcp\nUSER 1000\n",
            "FROM alpine:3.20\nEXPOSE 8080 2222\nUSER 1000\n",
        ),
        c(
            "CP013",
            2,
            "FROM debian:12\nRUN apt-get update\nRUN apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u5\nUSER 1000\n",
            "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u5\nUSER 1000\n",
        ),
        c(
            "CP014",
            2,
            "FROM debian:12\nRUN apt-get update && apt-get dist-upgrade -y\nUSER 1000\n",
            "FROM debian:12\nRUN apt-get update && apt-get upgrade -y\nUSER 1000\n",
        ),
        c(
            "CP015",
            2,
            "FROM ubi9/ubi-minimal:9.4\nRUN microdnf install -y tar-1.34\nUSER 1000\n",
            "FROM ubi9/ubi-minimal:9.4\nRUN microdnf install -y tar-1.34 && microdnf clean all\nUSER 1000\n",
        ),
        c(
            "CP016",
            2,
            "FROM alpine:3.20\nWORKDIR /proc/app\nUSER 1000\n",
            "FROM alpine:3.20\nWORKDIR /process\nUSER 1000\n",
        ),
        c(
            "DL3000",
            2,
            "FROM alpine:3.20\nWORKDIR app\nUSER 1000\n",
            "FROM alpine:3.20\nWORKDIR /app\nUSER 1000\n",
        ),
        c(
            "DL3001",
            2,
            "FROM alpine:3.20\nRUN service nginx start\nUSER 1000\n",
            "FROM alpine:3.20\nRUN nginx -t\nUSER 1000\n",
        ),
        c(
            "DL3002",
            3,
            "FROM alpine:3.20\nUSER 1000\nUSER root\n",
            "FROM alpine:3.20\nUSER root\nUSER 1000\n",
        ),
        c(
            "DL3003",
            2,
            "FROM alpine:3.20\nRUN cd /tmp && make\nUSER 1000\n",
            "FROM alpine:3.20\nWORKDIR /tmp\nRUN make\nUSER 1000\n",
        ),
        c(
            "DL3004",
            2,
            "FROM alpine:3.20\nRUN sudo make install\nUSER 1000\n",
            "FROM alpine:3.20\nRUN make install\nUSER 1000\n",
        ),
        c("DL3006", 1, "FROM alpine\nUSER 1000\n", "FROM alpine:3.20\nUSER 1000\n"),
        c("DL3007", 1, "FROM alpine:latest\nUSER 1000\n", "FROM alpine:3.20\nUSER 1000\n"),
        c(
            "DL3008",
            2,
            "FROM debian:12\nRUN apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*\nUSER 1000\n",
            "FROM debian:12\nRUN apt-get install -y --no-install-recommends curl=7.88.1-10 && rm -rf /var/lib/apt/lists/*\nUSER 1000\n",
        ),
        c(
            "DL3009",
            2,
            "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10\nUSER 1000\n",
            "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10 && rm -rf /var/lib/apt/lists/*\nUSER 1000\n",
        ),
        c(
            "DL3011",
            2,
            "FROM alpine:3.20\nEXPOSE 80000\nUSER 1000\n",
            "FROM alpine:3.20\nEXPOSE 8080/tcp\nUSER 1000\n",
        ),
        c(
            "DL3012",
            3,
            "FROM alpine:3.20\nHEALTHCHECK CMD true\nHEALTHCHECK CMD false\nUSER 1000\n",
            "FROM alpine:3.20\nHEALTHCHECK CMD true\nUSER 1000\n",
        ),
        c(
            "DL3013",
            2,
            "FROM python:3.12\nRUN pip install --no-cache-dir requests\nUSER 1000\n",
            "FROM python:3.12\nRUN pip install --no-cache-dir requests==2.32.3\nUSER 1000\n",
        ),
        c(
            "DL3014",
            2,
            "FROM debian:12\nRUN apt-get install --no-install-recommends curl=7.88.1-10\nUSER 1000\n",
            "FROM debian:12\nRUN apt-get install -y --no-install-recommends curl=7.88.1-10\nUSER 1000\n",
        ),
        c(
            "DL3015",
            2,
            "FROM debian:12\nRUN apt-get install -y curl=7.88.1-10\nUSER 1000\n",
            "FROM debian:12\nRUN apt-get install -y --no-install-recommends curl=7.88.1-10\nUSER 1000\n",
        ),
        c(
            "DL3016",
            2,
            "FROM node:22\nRUN npm install express\nUSER 1000\n",
            "FROM node:22\nRUN npm install express@4.21.1\nUSER 1000\n",
        ),
        c(
            "DL3018",
            2,
            "FROM alpine:3.20\nRUN apk add --no-cache curl\nUSER 1000\n",
            "FROM alpine:3.20\nRUN apk add --no-cache curl=8.9.1-r0\nUSER 1000\n",
        ),
        c(
            "DL3019",
            2,
            "FROM alpine:3.20\nRUN apk add curl=8.9.1-r0\nUSER 1000\n",
            "FROM alpine:3.20\nRUN apk add --no-cache curl=8.9.1-r0\nUSER 1000\n",
        ),
        c(
            "DL3020",
            2,
            "FROM alpine:3.20\nADD app.py /app/\nUSER 1000\n",
            "FROM alpine:3.20\nCOPY app.py /app/\nUSER 1000\n",
        ),
        c(
            "DL3021",
            2,
            "FROM alpine:3.20\nCOPY a b /app\nUSER 1000\n",
            "FROM alpine:3.20\nCOPY a b /app/\nUSER 1000\n",
        ),
        c(
            "DL3022",
            2,
            "FROM alpine:3.20\nCOPY --from=build /a /a\nUSER 1000\n",
            "FROM alpine:3.20 AS build\nFROM alpine:3.20\nCOPY --from=build /a /a\nUSER 1000\n",
        ),
        c(
            "DL3023",
            2,
            "FROM alpine:3.20 AS app\nCOPY --from=app /a /b\nUSER 1000\n",
            "FROM alpine:3.20 AS base\nFROM alpine:3.20 AS app\nCOPY --from=base /a /b\nUSER 1000\n",
        ),
        c(
            "DL3024",
            2,
            "FROM alpine:3.20 AS x\nFROM alpine:3.20 AS x\nUSER 1000\n",
            "FROM alpine:3.20 AS x\nFROM alpine:3.20 AS y\nUSER 1000\n",
        ),
        c(
            "DL3025",
            3,
            "FROM alpine:3.20\nUSER 1000\nCMD ./server --port 80\n",
            "FROM alpine:3.20\nUSER 1000\nCMD [\"./server\", \"--port\", \"80\"]\n",
        ),
        with(
            "DL3026",
            "trustedRegistries: [registry.example.org]\n",
            1,
            "FROM docker.io/library/alpine:3.20\nUSER 1000\n",
            "FROM registry.example.org/base/alpine:3.20\nUSER 1000\n",
        ),
        c(
            "DL3027",
            2,
            "FROM debian:12\nRUN apt install -y curl\nUSER 1000\n",
            "FROM debian:12\nRUN echo apt\nUSER 1000\n",
        ),
        c(
            "DL3028",
            2,
            "FROM ruby:3.3\nRUN gem install rails\nUSER 1000\n",
            "FROM ruby:3.3\nRUN gem install rails:7.2.1\nUSER 1000\n",
        ),
        c(
            "DL3029",
            1,
            "FROM --platform=linux/amd64 alpine:3.20\nUSER 1000\n",
            "FROM --platform=$BUILDPLATFORM alpine:3.20\nUSER 1000\n",
        ),
        c(
            "DL3030",
            2,
            "FROM centos:7\nRUN yum install httpd-2.4.6 && yum clean all\nUSER 1000\n",
            "FROM centos:7\nRUN yum install -y httpd-2.4.6 && yum clean all\nUSER 1000\n",
        ),
        c(
            "DL3032",
            2,
            "FROM centos:7\nRUN yum install -y httpd-2.4.6\nUSER 1000\n",
            "FROM centos:7\nRUN yum install -y httpd-2.4.6 && yum clean all\nUSER 1000\n",
        ),
        c(
            "DL3033",
            2,
            "FROM centos:7\nRUN yum install -y httpd && yum clean all\nUSER 1000\n",
            "FROM centos:7\nRUN yum install -y httpd-2.4.6 && yum clean all\nUSER 1000\n",
        ),
        c(
            "DL3034",
            2,
            "FROM opensuse/leap:15.6\nRUN zypper install httpd=2.4 && zypper clean\nUSER 1000\n",
            "FROM opensuse/leap:15.6\nRUN zypper install -y httpd=2.4 && zypper clean\nUSER 1000\n",
        ),
        c(
            "DL3035",
            2,
            "FROM opensuse/leap:15.6\nRUN zypper dist-upgrade -y\nUSER 1000\n",
            "FROM opensuse/leap:15.6\nRUN zypper refresh\nUSER 1000\n",
        ),
        c(
            "DL3036",
            2,
            "FROM opensuse/leap:15.6\nRUN zypper install -y httpd=2.4\nUSER 1000\n",
            "FROM opensuse/leap:15.6\nRUN zypper install -y httpd=2.4 && zypper clean\nUSER 1000\n",
        ),
        c(
            "DL3037",
            2,
            "FROM opensuse/leap:15.6\nRUN zypper install -y httpd && zypper clean\nUSER 1000\n",
            "FROM opensuse/leap:15.6\nRUN zypper install -y httpd=2.4 && zypper clean\nUSER 1000\n",
        ),
        c(
            "DL3038",
            2,
            "FROM fedora:40\nRUN dnf install httpd-2.4.62 && dnf clean all\nUSER 1000\n",
            "FROM fedora:40\nRUN dnf install -y httpd-2.4.62 && dnf clean all\nUSER 1000\n",
        ),
        c(
            "DL3040",
            2,
            "FROM fedora:40\nRUN dnf install -y httpd-2.4.62\nUSER 1000\n",
            "FROM fedora:40\nRUN dnf install -y httpd-2.4.62 && dnf clean all\nUSER 1000\n",
        ),
        c(
            "DL3041",
            2,
            "FROM fedora:40\nRUN dnf install -y httpd && dnf clean all\nUSER 1000\n",
            "FROM fedora:40\nRUN dnf install -y httpd-2.4.62 && dnf clean all\nUSER 1000\n",
        ),
        c(
            "DL3042",
            2,
            "FROM python:3.12\nRUN pip install requests==2.32.3\nUSER 1000\n",
            "FROM python:3.12\nENV PIP_NO_CACHE_DIR=1\nRUN pip install requests==2.32.3\nUSER 1000\n",
        ),
        c(
            "DL3043",
            2,
            "FROM alpine:3.20\nONBUILD FROM alpine:3.20\nUSER 1000\n",
            "FROM alpine:3.20\nONBUILD RUN echo hi\nUSER 1000\n",
        ),
        c(
            "DL3044",
            2,
            "FROM alpine:3.20\nENV A=/opt B=$A/bin\nUSER 1000\n",
            "FROM alpine:3.20\nENV A=/opt\nENV B=$A/bin\nUSER 1000\n",
        ),
        c(
            "DL3045",
            2,
            "FROM alpine:3.20\nCOPY app.py app/\nUSER 1000\n",
            "FROM alpine:3.20\nWORKDIR /srv\nCOPY app.py app/\nUSER 1000\n",
        ),
        c(
            "DL3046",
            2,
            "FROM debian:12\nRUN useradd -u 123456789 app\nUSER 123456789\n",
            "FROM debian:12\nRUN useradd -l -u 123456789 app\nUSER 123456789\n",
        ),
        c(
            "DL3047",
            2,
            "FROM debian:12\nRUN wget https://example.org/x.tgz\nUSER 1000\n",
            "FROM debian:12\nRUN wget -q https://example.org/x.tgz\nUSER 1000\n",
        ),
        c(
            "DL3048",
            2,
            "FROM alpine:3.20\nLABEL Maintainer=me\nUSER 1000\n",
            "FROM alpine:3.20\nLABEL org.opencontainers.image.authors=me\nUSER 1000\n",
        ),
        with(
            "DL3050",
            "label-schema:\n  version: semver\nstrict-labels: true\n",
            2,
            "FROM alpine:3.20\nLABEL version=1.2.3 extra=1\nUSER 1000\n",
            "FROM alpine:3.20\nLABEL version=1.2.3\nUSER 1000\n",
        ),
        with(
            "DL3051",
            "label-schema:\n  owner: text\n",
            2,
            "FROM alpine:3.20\nLABEL owner=\"\"\nUSER 1000\n",
            "FROM alpine:3.20\nLABEL owner=team-a\nUSER 1000\n",
        ),
        with(
            "DL3052",
            "label-schema:\n  url: url\n",
            2,
            "FROM alpine:3.20\nLABEL url=example\nUSER 1000\n",
            "FROM alpine:3.20\nLABEL url=https://example.org\nUSER 1000\n",
        ),
        with(
            "DL3053",
            "label-schema:\n  created: rfc3339\n",
            2,
            "FROM alpine:3.20\nLABEL created=yesterday\nUSER 1000\n",
            "FROM alpine:3.20\nLABEL created=2024-03-07T12:00:00Z\nUSER 1000\n",
        ),
        with(
            "DL3054",
            "label-schema:\n  license: spdx\n",
            2,
            "FROM alpine:3.20\nLABEL license=\"my licence!\"\nUSER 1000\n",
            "FROM alpine:3.20\nLABEL license=Apache-2.0\nUSER 1000\n",
        ),
        with(
            "DL3055",
            "label-schema:\n  revision: hash\n",
            2,
            "FROM alpine:3.20\nLABEL revision=main\nUSER 1000\n",
            "FROM alpine:3.20\nLABEL revision=0123456789abcdef0123456789abcdef01234567\nUSER 1000\n",
        ),
        with(
            "DL3056",
            "label-schema:\n  version: semver\n",
            2,
            "FROM alpine:3.20\nLABEL version=v1\nUSER 1000\n",
            "FROM alpine:3.20\nLABEL version=1.0.0\nUSER 1000\n",
        ),
        with(
            "DL3058",
            "label-schema:\n  maintainer: email\n",
            2,
            "FROM alpine:3.20\nLABEL maintainer=\"team a\"\nUSER 1000\n",
            "FROM alpine:3.20\nLABEL maintainer=team@example.org\nUSER 1000\n",
        ),
        c(
            "DL3059",
            3,
            "FROM alpine:3.20\nRUN echo a\nRUN echo b\nUSER 1000\n",
            "FROM alpine:3.20\nRUN echo a && echo b\nUSER 1000\n",
        ),
        c(
            "DL3060",
            2,
            "FROM node:22\nRUN yarn install\nUSER 1000\n",
            "FROM node:22\nRUN yarn install && yarn cache clean\nUSER 1000\n",
        ),
        c("DL3066", 2, "FROM alpine:3.20\nUSER app\n", "FROM alpine:3.20\nUSER 1000:1000\n"),
        c(
            "DL4000",
            2,
            "FROM alpine:3.20\nMAINTAINER me@example.org\nUSER 1000\n",
            "FROM alpine:3.20\nLABEL org.opencontainers.image.authors=me@example.org\nUSER 1000\n",
        ),
        c(
            "DL4001",
            3,
            "FROM alpine:3.20\nRUN wget -q https://a\nRUN curl -fsS https://b\nUSER 1000\n",
            "FROM alpine:3.20\nRUN curl -fsS https://a\nRUN curl -fsS https://b\nUSER 1000\n",
        ),
        c(
            "DL4003",
            4,
            "FROM alpine:3.20\nUSER 1000\nCMD [\"a\"]\nCMD [\"b\"]\n",
            "FROM alpine:3.20\nUSER 1000\nCMD [\"b\"]\n",
        ),
        c(
            "DL4004",
            4,
            "FROM alpine:3.20\nUSER 1000\nENTRYPOINT [\"a\"]\nENTRYPOINT [\"b\"]\n",
            "FROM alpine:3.20\nUSER 1000\nENTRYPOINT [\"b\"]\n",
        ),
        c(
            "DL4005",
            2,
            "FROM debian:12\nRUN ln -sf /bin/bash /bin/sh\nUSER 1000\n",
            "FROM debian:12\nSHELL [\"/bin/bash\", \"-c\"]\nUSER 1000\n",
        ),
        c(
            "DL4006",
            2,
            "FROM debian:12\nRUN curl -fsS https://a | tar x\nUSER 1000\n",
            "FROM debian:12\nSHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN curl -fsS https://a | tar x\nUSER 1000\n",
        ),
        c(
            "DL3010",
            2,
            "FROM debian:12\nCOPY app.tar.gz /tmp/\nRUN tar xzf /tmp/app.tar.gz -C /opt\nUSER 1000\n",
            "FROM debian:12\nADD app.tar.gz /opt/\nUSER 1000\n",
        ),
    ]
}

fn fired(case: &Case, text: &str) -> Vec<usize> {
    let config = if case.config.is_empty() {
        LintConfig::new()
    } else {
        LintConfig::parse(case.config).expect("case config parses")
    };
    lint(text, &config, &LintContext::default())
        .findings
        .into_iter()
        .filter(|f| f.rule == case.rule)
        .map(|f| f.line)
        .collect()
}

#[test]
fn each_rule_fires_on_its_bad_file_and_not_on_its_good_file() {
    let mut failures = Vec::new();
    for case in cases() {
        let bad = fired(&case, case.bad);
        if !bad.contains(&case.line) {
            failures.push(format!(
                "{}: expected on line {} of the bad file, got {bad:?}\n{}",
                case.rule, case.line, case.bad
            ));
        }
        let good = fired(&case, case.good);
        if !good.is_empty() {
            failures.push(format!("{}: fired on lines {good:?} of the good file\n{}", case.rule, case.good));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_rule_has_a_case() {
    let covered: Vec<&str> = cases().iter().map(|c| c.rule).collect();
    // CP006 and DL3049 need facts from outside the text: tested below.
    let missing: Vec<&str> = RULES
        .iter()
        .map(|r| r.id)
        .filter(|id| !covered.contains(id) && !["CP006", "DL3049"].contains(id))
        .collect();
    assert!(missing.is_empty(), "rules without a failing/passing case: {missing:?}");
}

#[test]
fn missing_dockerignore_and_missing_label() {
    let text = "FROM alpine:3.20\nUSER 1000\n";
    let ctx = |has| LintContext {
        has_dockerignore: Some(has),
        secrets: None,
    };
    let rules =
        |ctx: &LintContext<'_>, config: &LintConfig| lint(text, config, ctx).findings.into_iter().map(|f| f.rule).collect::<Vec<_>>();
    assert!(rules(&ctx(false), &LintConfig::new()).contains(&"CP006".to_string()));
    assert!(!rules(&ctx(true), &LintConfig::new()).contains(&"CP006".to_string()));
    let schema = LintConfig::parse("label-schema:\n  maintainer: email\n").unwrap();
    assert!(rules(&ctx(true), &schema).contains(&"DL3049".to_string()));
    let labelled = "FROM alpine:3.20\nLABEL maintainer=a@example.org\nUSER 1000\n";
    assert!(!lint(labelled, &schema, &ctx(true)).findings.iter().any(|f| f.rule == "DL3049"));
}

#[test]
fn secret_values_are_found_by_the_secrets_scanner() {
    let scanner = customs_secrets::Scanner::builtin();
    let text = "FROM alpine:3.20\nARG DEPLOY=AKIAQYLPMN5HFIQR7XYZ\nUSER 1000\n";
    let ctx = LintContext {
        has_dockerignore: None,
        secrets: Some(&scanner),
    };
    let report = lint(text, &LintConfig::new(), &ctx);
    let hit = report
        .findings
        .iter()
        .find(|f| f.rule == "CP004")
        .expect("AWS key in ARG is reported");
    assert_eq!(hit.line, 2);
    assert!(
        !hit.message.contains("AKIAQYLPMN5HFIQR7XYZ"),
        "the secret is never printed: {}",
        hit.message
    );
}

#[test]
fn pragmas_and_config_suppress() {
    let text = "FROM alpine:3.20\n# hadolint ignore=DL3018,DL3019\nRUN apk add curl\n# customs ignore=DL3059\nRUN apk add --no-cache git=2.45.2-r0\nUSER 1000\n";
    let report = lint(text, &LintConfig::new(), &LintContext::default());
    let rules: Vec<_> = report.findings.iter().map(|f| f.rule.as_str()).collect();
    assert!(
        !rules.contains(&"DL3018") && !rules.contains(&"DL3019") && !rules.contains(&"DL3059"),
        "{rules:?}"
    );
    assert_eq!(report.suppressed, 3);
    let global = "# hadolint global ignore=CP002,CP011\nFROM alpine:3.20\nUSER 1000\n";
    assert!(lint(global, &LintConfig::new(), &LintContext::default()).findings.is_empty());
    let config = LintConfig::parse("ignored: [CP002, CP011]\noverride:\n  error: [DL3059]\n").unwrap();
    let report = lint("FROM alpine:3.20\nRUN a\nRUN b\nUSER 1000\n", &config, &LintContext::default());
    assert_eq!(report.findings.len(), 1);
    assert_eq!(
        (report.findings[0].rule.as_str(), report.findings[0].level),
        ("DL3059", customs_dockerfile::Level::Error)
    );
}

#[test]
fn a_broken_instruction_is_reported_and_the_rest_is_linted() {
    let text = "FROM alpine:3.20\nRUNN apk add curl\nRUN sudo make\nUSER 1000\n";
    let report = lint(text, &LintConfig::new(), &LintContext::default());
    let rules: Vec<_> = report.findings.iter().map(|f| (f.rule.as_str(), f.line)).collect();
    assert!(rules.contains(&("DL1000", 2)), "{rules:?}");
    assert!(rules.contains(&("DL3004", 3)), "{rules:?}");
}

#[test]
fn non_ascii_paths_do_not_panic() {
    // The Windows drive check looks at the second byte; a multi-byte first character must not split it.
    let report = lint(
        "FROM alpine:3.20\nCOPY a éb\nWORKDIR éa:/x\nUSER 1000\n",
        &LintConfig::new(),
        &LintContext::default(),
    );
    let rules: Vec<_> = report.findings.iter().map(|f| (f.rule.as_str(), f.line)).collect();
    assert!(rules.contains(&("DL3045", 2)) && rules.contains(&("DL3000", 3)), "{rules:?}");
}

/// Issue 15 item 3: what Trivy's Dockerfile checks caught and customs missed.
#[test]
fn trivy_catches_that_were_missed() {
    let rules = |text: &str| -> Vec<(String, usize)> {
        lint(text, &LintConfig::new(), &LintContext::default())
            .findings
            .into_iter()
            .map(|f| (f.rule, f.line))
            .collect()
    };
    let has = |text: &str, rule: &str, line: usize| rules(text).contains(&(rule.to_string(), line));
    // A final `FROM scratch` without USER runs as uid 0; so does a stage built on a stage that never set USER.
    assert!(has(
        "FROM golang:1.23 AS build\nRUN go build -o /app .\nFROM scratch\nCOPY --from=build /app /app\n",
        "CP001",
        3
    ));
    let inherited = "FROM alpine:3.20 AS base\nRUN apk add --no-cache curl=8.9.1-r0\nFROM base\nCMD [\"curl\"]\n";
    assert!(has(inherited, "CP001", 3), "{:?}", rules(inherited));
    let inherited_user = "FROM alpine:3.20 AS base\nUSER 1000\nFROM base\nCMD [\"sh\"]\n";
    assert!(
        !rules(inherited_user).iter().any(|(r, _)| r == "CP001"),
        "USER is inherited from the stage"
    );
    // `FROM $BASE` reads `ARG BASE=rust`: untagged.
    let via_arg = "ARG BASE=rust\nFROM $BASE\nUSER 1000\n";
    assert!(has(via_arg, "DL3006", 2), "{:?}", rules(via_arg));
    assert!(has("ARG BASE=rust:latest\nFROM ${BASE}\nUSER 1000\n", "DL3007", 2));
    assert!(
        !rules("ARG BASE=rust:1.83\nFROM ${BASE}\nUSER 1000\n")
            .iter()
            .any(|(r, _)| r == "DL3006" || r == "DL3007")
    );
    // `sudo apt-get install` is an apt-get install.
    let sudo = "FROM debian:12\nRUN sudo apt-get install -y curl=7.88.1-10+deb12u5\nUSER 1000\n";
    assert!(has(sudo, "DL3015", 2) && has(sudo, "DL3004", 2), "{:?}", rules(sudo));
    assert!(has(
        "FROM debian:12\nRUN sudo -E -u root apt-get install curl=7.88.1-10+deb12u5\nUSER 1000\n",
        "DL3014",
        2
    ));
    // Secret-named build arguments end up in the history; ENV copies them into the config.
    assert!(has("FROM alpine:3.20\nARG GITHUB_TOKEN\nUSER 1000\n", "CP004", 2));
    assert!(has(
        "FROM alpine:3.20\nARG API_KEY\nENV API_KEY=${API_KEY}\nUSER 1000\n",
        "CP004",
        3
    ));
    assert!(
        !rules("FROM alpine:3.20\nARG VERSION\nENV APP_VERSION=${VERSION}\nUSER 1000\n")
            .iter()
            .any(|(r, _)| r == "CP004")
    );
}
