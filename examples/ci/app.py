"""The example application the pipeline templates build (examples/ci/Dockerfile): one health endpoint."""
from flask import Flask

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=8080)
