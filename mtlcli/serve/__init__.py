"""`mtl serve`: a trained model (or its ONNX export) behind an HTTP service and a web page.

    schemas   the request bodies and the service's limits (ServeSettings)
    batcher   dynamic micro-batching: concurrent requests gathered into one inference worker's batches
    metrics   Prometheus counters, histograms and gauges of one app
    app       the FastAPI app: one POST route per task, /health, /info, /metrics, the page at /
    page.html the web page (no CDN: it works offline)

FastAPI, uvicorn and prometheus-client are the optional extra `mtl[serve]`.
"""
