"""Stand-ins for a model and for servers, importable by tests and benchmarks alike.

    scripted_backend  `ScriptedBackend`: a deterministic, instant backend for control flow
    tgi_server        `LocalServer` and its apps: TGI- and OpenAI-protocol servers on 127.0.0.1

They are part of the package (not of `tests/`) so that `scripts/bench_*.py` can run the same
scripted runs as the tests, passed in as a backend rather than patched over the real one.
"""
