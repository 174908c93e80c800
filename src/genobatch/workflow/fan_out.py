"""Map and Parallel states in the interpreter: starting children, MaxConcurrency, results, failures.

A mixin of the interpreter's ``_Run`` (:mod:`genobatch.workflow.interpreter`): its methods use the
run's frames, ``enter``, ``emit``, ``complete`` and ``state_failed``. A Map/Parallel frame keeps its
children's bookkeeping in ``frame["children"]``: per-child status (P pending, R running, S succeeded,
F failed, A aborted) in a list and a queue of children still to start, so finishing one child
starts the next without scanning the others; a succeeded child's frame is dropped (its output kept
in ``results``), a failed or aborted child's frame is kept for a redrive.
"""

from __future__ import annotations

from typing import Any

from genobatch.workflow import errors, states
from genobatch.workflow.execution import child_frame_id, new_frame


class FanOut:
    """The Map and Parallel part of one ``apply()`` run."""

    def start_children(self, frame_id: str, frame: dict, state: dict, scope: states.Scope) -> None:
        prefix = f"{frame_id}/{frame['state']}@{frame['visit']}.{frame['attempt']}"
        if state["Type"] == "Parallel":
            branch_input = states.task_parameters(state, frame["input"], scope)
            count = len(state["Branches"])
            inputs = [branch_input] * count
            concurrency = 0
            tolerated = (None, None)  # any failed branch fails the Parallel state
            self.emit("ParallelStateStarted", frame, None)
        else:
            items, data = states.map_items(state, frame["input"], scope)
            inputs = [states.map_item_input(state, data, index, item, scope) for index, item in enumerate(items)]
            count = len(items)
            concurrency, tolerated_count, tolerated_percentage = states.map_limits(state, data, scope)
            tolerated = (tolerated_count, tolerated_percentage)
            self.emit("MapStateStarted", frame, {"length": count})
        frame["children"] = {
            "kind": "parallel" if state["Type"] == "Parallel" else "map",
            "prefix": prefix,
            "inputs": inputs,
            "results": [None] * count,
            "status": ["P"] * count,
            "queue": list(range(count)),
            "queue_at": 0,
            "running": 0,
            "done": 0,
            "failed": 0,
            "concurrency": concurrency,
            "tolerated": list(tolerated),
            "failure": None,
        }
        self.start_more(frame_id)

    def start_more(self, frame_id: str) -> None:
        """Start queued children while the concurrency limit allows; finish when all are done."""
        frame = self.ex.frames[frame_id]
        children = frame["children"]
        limit = children["concurrency"] or len(children["status"])
        while children["queue_at"] < len(children["queue"]) and children["running"] < limit:
            index = children["queue"][children["queue_at"]]
            children["queue_at"] += 1
            children["running"] += 1
            children["status"][index] = "R"
            child_id = child_frame_id(children["prefix"], index)
            if children["kind"] == "map":
                self.emit("MapIterationStarted", frame, {"name": frame["state"], "index": index})
                machine = f"{frame['machine']}/{frame['state']}"
            else:
                machine = f"{frame['machine']}/{frame['state']}/{index}"
            existing = self.ex.frames.get(child_id)
            if existing is not None and existing["status"] in ("FAILED", "ABORTED"):
                self.redrive_later(child_id)  # a redrive resumes the child where it stopped
            else:
                self.ex.frames[child_id] = new_frame(child_id, machine, frame_id, index, frame["vars"])
                self.ex.frames[child_id]["last_event"] = frame["last_event"]
                self.enter(child_id, self.definition.start_at(machine), children["inputs"][index])
        if children["done"] == len(children["status"]) and children["running"] == 0:
            self.emit(f"{self.state_of(frame)['Type']}StateSucceeded", frame, None)
            self.complete(frame_id, children["results"])

    def child_finished(self, child: dict, output: Any, error: str | None, cause: str | None) -> None:
        parent_id = child["parent"]
        frame = self.ex.frames[parent_id]
        children = frame["children"]
        index = child["index"]
        children["running"] -= 1
        is_map = children["kind"] == "map"
        name = frame["state"]
        if error is None:
            children["status"][index] = "S"
            children["results"][index] = output
            children["done"] += 1
            if is_map:
                self.emit("MapIterationSucceeded", frame, {"name": name, "index": index})
            self.start_more(parent_id)
            return
        children["status"][index] = "F"
        children["failed"] += 1
        if is_map:
            self.emit("MapIterationFailed", frame, {"name": name, "index": index})
        if is_map and self.tolerated(children):
            children["results"][index] = {"Error": error, "Cause": cause}
            children["done"] += 1
            self.start_more(parent_id)
            return
        # The state fails: abort the running siblings (their tasks are cancelled), keep the
        # bookkeeping for a redrive, then Retry/Catch at the Map/Parallel level.
        for sibling, status in enumerate(children["status"]):
            if status == "R":
                self.abort_frame(child_frame_id(children["prefix"], sibling))
                children["status"][sibling] = "A"
                children["running"] -= 1
                if is_map:
                    self.emit("MapIterationAborted", frame, {"name": name, "index": sibling})
        children["failure"] = [error, cause]
        if is_map and children["tolerated"] != [None, None]:
            error = errors.EXCEED_TOLERATED_FAILURE_THRESHOLD
            cause = f"Map state exceeded the failure tolerance: {cause}"
        self.emit(f"{self.state_of(frame)['Type']}StateFailed", frame, None)
        self.state_failed(parent_id, error, cause)

    def drop_children(self, frame: dict) -> None:
        """The Map/Parallel state is over (left, retried or caught): forget its children's
        bookkeeping and the frames of failed or aborted children kept for a redrive."""
        children = frame["children"]
        if not children:
            return
        for index, status in enumerate(children["status"]):
            if status in ("F", "A"):
                self.ex.frames.pop(child_frame_id(children["prefix"], index), None)
        frame["children"] = None

    @staticmethod
    def tolerated(children: dict) -> bool:
        """Whether the failures so far are within ToleratedFailureCount / ToleratedFailurePercentage
        (with both set, exceeding either fails the Map)."""
        count, percentage = children["tolerated"]
        if count is None and percentage is None:
            return False
        failed = children["failed"]
        total = len(children["status"]) or 1
        within_count = count is None or failed <= count
        within_percentage = percentage is None or failed * 100.0 / total <= percentage
        return within_count and within_percentage
