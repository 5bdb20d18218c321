"""The served sklearn example (azureml_online, copy mode) as clients and operators meet it: slow
clients hold up no request (pkgc's gunicorn worker), kept-alive connections and the scoring timeout
still work, and the package runs under a read-only root filesystem with a tmpfs at /tmp; a server
that crashes is reported by its first exception."""

from __future__ import annotations

import http.client
import json
import time

import docker
import pytest

from compiler.runtime.http import wait_ready
from tests.conftest import run_pkgc
from tests.e2e.examples import build, copy_example
from tests.slow_clients import median_latency, slow_clients, timed_request

pytestmark = pytest.mark.engine


@pytest.fixture
def docker_client():
    client = docker.from_env()
    yield client
    client.close()


def start(client, image: str, **options):
    """Run ``image`` with port 5001 on a free loopback port; the container and that port."""
    container = client.containers.run(image, detach=True, ports={"5001/tcp": ("127.0.0.1", None)}, **options)
    container.reload()
    port = int(container.attrs["NetworkSettings"]["Ports"]["5001/tcp"][0]["HostPort"])
    return container, port


def running(container) -> bool:
    container.reload()
    return container.status in ("created", "running")


def test_slow_clients_hold_up_no_request_and_the_scoring_timeout_fires(copy_package, example_copy, docker_client):
    # run() gets at most 200 ms: the sample answers in a few; 400,000 rows take longer to parse
    container, port = start(docker_client, copy_package["image"], environment={"SCORING_TIMEOUT_MS": "200"})
    try:
        wait_ready(f"http://127.0.0.1:{port}/", 90, lambda: running(container))
        sample = (example_copy / "sample-request.json").read_bytes()
        big = json.dumps({"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]] * 400_000}).encode()  # made before: kept-alive is 2 s
        baseline = median_latency(port, "/score", method="POST", body=sample)
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        first = timed_request(port, "/score", conn=kept, method="POST", body=sample)
        with slow_clients(port, silent=10, one_byte=1):
            probes = [timed_request(port, "/score", method="POST", body=sample) for _ in range(5)]
            probes += [timed_request(port, "/score", conn=kept, method="POST", body=sample) for _ in range(5)]
            late = timed_request(port, "/score", conn=kept, method="POST", body=big)
        answers = {(status, body) for _, status, body in [first, *probes]}
        assert len(answers) == 1 and next(iter(answers))[0] == 200
        worst = max(seconds for seconds, _, _ in probes)
        print(f"\n/score: {baseline * 1000:.1f} ms alone, at most {worst * 1000:.1f} ms beside 10 silent + 1 one-byte connections")
        assert worst - baseline < 0.1
        assert late[1] == 500 and b"Scoring timeout after 200 ms" in late[2]  # SIGALRM fired in the main thread
        assert timed_request(port, "/score", conn=kept, method="POST", body=sample)[1] == 200  # the same connection goes on
    finally:
        container.remove(force=True)


def test_a_read_only_root_filesystem_serves_with_a_tmpfs_at_tmp(copy_package, example_copy, docker_client):
    container, port = start(docker_client, copy_package["image"], read_only=True, tmpfs={"/tmp": ""})
    try:
        wait_ready(f"http://127.0.0.1:{port}/", 90, lambda: running(container))
        status = timed_request(port, "/score", method="POST", body=(example_copy / "sample-request.json").read_bytes())[1]
        assert status == 200
        code, out = container.exec_run(["sh", "-c", 'readlink /proc/1/cwd; tr "\\0" "\\n" < /proc/1/environ | grep -E "^(HOME|TMPDIR)="'])
        assert code == 0 and sorted(out.decode().split()) == ["/tmp/pkgc-work", "HOME=/tmp/pkgc-home", "TMPDIR=/tmp"]
    finally:
        container.remove(force=True)
    container = docker_client.containers.run(copy_package["image"], detach=True, read_only=True)
    try:
        assert container.wait(timeout=60)["StatusCode"] == 78
        assert "/tmp is not writable" in container.logs().decode() and "--tmpfs /tmp" in container.logs().decode()
    finally:
        container.remove(force=True)


def test_the_stock_sync_worker_waits_on_a_silent_client(copy_package, example_copy, docker_client):
    """What the README says the package does not guarantee with GUNICORN_CMD_ARGS=--worker-class sync."""
    container, port = start(docker_client, copy_package["image"], environment={"GUNICORN_CMD_ARGS": "--worker-class sync"})
    try:
        wait_ready(f"http://127.0.0.1:{port}/", 90, lambda: running(container))
        with slow_clients(port, silent=4, one_byte=0):  # as many as workers, and more
            started = time.monotonic()
            try:
                timed_request(port, "/", conn=http.client.HTTPConnection("127.0.0.1", port, timeout=2))
            except TimeoutError:
                pass
            assert time.monotonic() - started >= 1.9  # held up behind the silent connection
    finally:
        container.remove(force=True)


CRASHING_SERVER = '''\
import logging, sys
logging.basicConfig(format="%(asctime)s [%(levelname)s] %(message)s", level=logging.INFO)
logging.info("Booting worker with pid: 7")
try:
    import model_loader_that_is_not_installed
except ImportError:
    logging.exception("Exception in worker process")
    logging.info("Worker exiting (pid: 7)")
    logging.info("Shutting down: Master")
    logging.info("Reason: Worker failed to boot.")
    sys.exit(3)
'''


def test_pkgc_run_names_the_first_exception_of_a_server_that_crashed(registered, session_env, tmp_path):
    """A custom server that fails at start and goes on logging (as gunicorn does): `pkgc run` names the
    exception, not the log's last line."""
    example = copy_example("custom-http", tmp_path)
    (example / "server" / "app.py").write_text(CRASHING_SERVER)
    spec = example / "package.yml"
    spec.write_text(spec.read_text().replace("custom-http-pkg", "runtime-crash-pkg"))
    image = build(example / "package.yml", registered["model"], session_env)["image"]
    proc = run_pkgc("run", image, "--timeout", "60", env=session_env)
    assert proc.returncode == 4
    error = [line for line in proc.stderr.splitlines() if "exited with code 3" in line]
    assert len(error) == 1, proc.stderr
    assert "first error: ModuleNotFoundError: No module named 'model_loader_that_is_not_installed'" in error[0]
    assert "app.py:5, in <module>); last line: " in error[0] and error[0].endswith("Reason: Worker failed to boot.")
