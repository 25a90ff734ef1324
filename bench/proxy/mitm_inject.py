"""mitmdump addon for the baseline: inject the same header authsome injects."""


def request(flow):
    if flow.request.host == "localhost":
        flow.request.headers["Authorization"] = "Bearer sk-bench-0123456789abcdef0123"
