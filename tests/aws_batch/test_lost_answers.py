"""A SubmitJob whose answer is lost after the remote took the job: adopted by name, never run twice.

A small TCP proxy sits between the engine and the real remote server. It passes everything
through, except that it swallows the answer of the first SubmitJob it sees (the remote has already
committed the job) and closes the connection: the client cannot know whether it was submitted.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest
from aws_remote import Events, attempt, remote_jobs_named, session_for

from genobatch.backends.aws_batch import AwsBatchEngine
from genobatch.backends.base import AttemptExited, AttemptSubmitted
from genobatch.backends.remote import RemoteBackend, Uncertain


class AnswerEatingProxy:
    """Forwards TCP connections to ``target``; the first connection that carries a SubmitJob gets no answer."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.eaten = 0
        self._armed = True
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        eating = threading.Event()  # this connection's next answer is swallowed
        threading.Thread(target=self._answers, args=(upstream, client, eating), daemon=True).start()
        try:
            while data := client.recv(65536):
                if b"/v1/submitjob" in data:
                    with self._lock:
                        if self._armed:
                            self._armed = False
                            eating.set()
                upstream.sendall(data)
        except OSError:
            pass
        upstream.close()

    def _answers(self, upstream: socket.socket, client: socket.socket, eating: threading.Event) -> None:
        try:
            while data := upstream.recv(65536):
                if eating.is_set():  # the remote answered (and committed the job); the client hears nothing
                    self.eaten += 1
                    break
                client.sendall(data)
        except OSError:
            pass
        for end in (client, upstream):  # shutdown, not just close: another thread is blocked reading it
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxy(remote):
    proxy = AnswerEatingProxy(remote.port)
    yield proxy
    proxy.close()


def engine_via(proxy, remote, queue) -> AwsBatchEngine:
    return AwsBatchEngine("ce", queue, session=session_for(remote), endpoint=f"http://127.0.0.1:{proxy.port}")


def test_a_lost_submit_answer_is_uncertain(proxy, remote, remote_queue, tmp_path):
    engine = engine_via(proxy, remote, remote_queue)
    try:
        spec = attempt(tmp_path, ["true"])
        [result] = engine.submit([spec])
        assert isinstance(result, Uncertain), result
        assert proxy.eaten == 1
        # It did reach the remote: found by name, once.
        assert len(remote_jobs_named(remote, remote_queue, spec.name)) == 1
        assert set(engine.find([spec.name])) == {spec.name}
    finally:
        engine.close()


def test_the_backend_adopts_an_uncertain_submission_instead_of_submitting_again(proxy, remote, remote_queue, tmp_path):
    engine = engine_via(proxy, remote, remote_queue)
    engine.poll_interval_s = 0.3
    backend = RemoteBackend(engine, "ce")
    events = Events()
    backend.bind(events)
    try:
        spec = attempt(tmp_path, ["sh", "-c", "echo once"])
        backend.start(spec)
        assert events.wait(AttemptExited, spec.job_id).exit_code == 0
        assert proxy.eaten == 1
        [remote_job] = remote_jobs_named(remote, remote_queue, spec.name)
        assert events.wait(AttemptSubmitted, spec.job_id).info["handle"] == remote_job["jobId"]
        assert (tmp_path / spec.job_id / "1" / "output.log").read_text() == "once\n"
    finally:
        backend.close()
