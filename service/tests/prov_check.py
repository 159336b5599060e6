"""Checks a W3C PROV-JSON document read from standard input, independently
of provreg: validates it against the PROV-JSON JSON Schema that the `prov`
package ships (the W3C submission's schema), then loads it with `prov`,
warnings treated as errors (an undeclared prefix, a malformed time). Prints
the loaded records counted by type, as JSON; exits non-zero on any failure.

Needs `prov` and `jsonschema[format]` (see .ci/run).
"""

import json
import os
import sys
import warnings

import jsonschema
import prov
import prov.model

text = sys.stdin.read()
document = json.loads(text)
schema_path = os.path.join(
    os.path.dirname(prov.__file__), "tests", "schemas", "prov-json.schema.json"
)
with open(schema_path, encoding="utf-8") as f:
    schema = json.load(f)
validator = jsonschema.validators.validator_for(schema)
validator(schema, format_checker=validator.FORMAT_CHECKER).validate(document)

warnings.simplefilter("error")
loaded = prov.model.ProvDocument.deserialize(content=text, format="json")
counts = {}
for record in loaded.get_records():
    name = type(record).__name__
    counts[name] = counts.get(name, 0) + 1
print(json.dumps(counts, sort_keys=True))
