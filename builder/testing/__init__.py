"""Stand-ins for a model and for servers, importable by tests and benchmarks alike.

    scripted_backend  `ScriptedBackend`: a deterministic, instant backend for control flow
    local_server      `LocalServer`: serves an app on 127.0.0.1; `Reply`, what an app answers
    tgi_server        `ModelTGIApp`: TGI's native API over a real model
    scripted_server   `ScriptedApp`: TGI and OpenAI protocols, no model; latency, faults

They are part of the package (not of `tests/`) so that `scripts/bench_*.py` can run the same
scripted runs as the tests, passed in as a backend rather than patched over the real one.
"""
