//! schemathesis (PyPI) with `--checks all` against a seeded server: generated requests, valid and
//! invalid, must get answers the document declares — no 5xx, bodies and headers as declared.
