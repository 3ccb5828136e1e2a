#!/usr/bin/env python3
"""Validates an SBOM with the reference libraries: CycloneDX 1.6 against its JSON schema
(cyclonedx-python-lib's strict validator) and SPDX 2.3 with spdx-tools' full validator.
Exit 0: valid. Exit 1: invalid (reasons printed). Exit 3: the validator library is missing."""
import sys

kind, path = sys.argv[1], sys.argv[2]
try:
    if kind == "cyclonedx":
        from cyclonedx.schema import SchemaVersion
        from cyclonedx.validation.json import JsonStrictValidator
    else:
        from spdx_tools.spdx.parser.parse_anything import parse_file
        from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
except ImportError as e:
    print(f"missing validator: {e}")
    sys.exit(3)

if kind == "cyclonedx":
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(path).read())
    if error is not None:
        print(error)
        sys.exit(1)
else:
    messages = validate_full_spdx_document(parse_file(path), "SPDX-2.3")
    for m in messages:
        print(m.validation_message)
    sys.exit(1 if messages else 0)
print("valid")
