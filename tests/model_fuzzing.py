"""Requests generated from botocore's Batch model for the fuzzer (tests/e2e/test_fuzz.py).

:class:`Generator` makes values from shapes: valid ones within the model's bounds, values of a
wrong type, values past the bounds, and odd-but-valid ones. :class:`Fuzzer` turns them into
:class:`Probe` requests - broken bodies for every operation, odd input for read-only ones, wrong
methods, unknown paths, native endpoints, bad authentication - from one seeded RNG.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import string
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.model import Shape

from genobatch.api.model import OPERATIONS, operation_model

READ_PREFIXES = ("Describe", "List", "Get")
INT_BOUNDS = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
WILD_STRINGS = [
    "",
    " ",
    "*",
    "%",
    "_",
    "'; DROP TABLE jobs; --",
    "arn:aws:batch:us-east-1:000000000000:job-queue/fuzz-q",
    "arn:",
    "fuzz-def:\u00b2",
    "fuzz-def:99999999999999999999",
    "99999999999999999999",
    "\u00b2",
    "1e400",
    "nan",
    "a" * 5000,
    "\u00e9\u4e2d\U0001f600",
    "\u202e\ufeff\u200b",
    "\\u0000",
    "../../etc/passwd",
    "\n\r\t",
]
#: nextToken values: the server's tokens are offsets, ARNs or base64 JSON; these are well-formed
#: ones of each kind with values the store cannot hold, and garbage.
TOKENS = [
    base64.urlsafe_b64encode(b"[1000000000000000000000000000000, 0]").decode(),
    base64.urlsafe_b64encode(b"[-1, 99999999999999999999]").decode(),
    base64.urlsafe_b64encode(b'["a", {}]').decode(),
    base64.urlsafe_b64encode(b"[1e308, 0]").decode(),
    base64.urlsafe_b64encode(b"[1, 2, 3]").decode(),
    base64.urlsafe_b64encode(b"[0, 7]").decode(),
    base64.urlsafe_b64encode(b"\xff").decode(),
    "99999999999999999999",
    "-1",
    "\u00b2",
    "=",
    "arn:aws:batch:us-east-1:000000000000:job-definition/zzz:1",
]
JUNK_QUERIES = [
    "%zz",
    "&&&",
    "=",
    "a=%ED%A0%80",
    "tagKeys",
    "tagKeys=&tagKeys=",
    "maxResults=-1&nextToken=%C2%B2",
    "x=" + "y" * 3000,
    "%00=%00",
    ";;",
]
#: The CloudWatch Logs operations served on the endpoint (genobatch.api.logs).
LOGS_OPERATIONS = ("GetLogEvents", "FilterLogEvents", "DescribeLogStreams")
#: Members that name a resource, and which seeded resource to name.
REFERENCES = {
    "logGroupName": "log_group",
    "logStreamName": "log_stream",
    "logStreamNames": "log_stream",
    "jobQueue": "queue_name",
    "jobQueues": "queue_name",
    "computeEnvironment": "ce_name",
    "computeEnvironments": "ce_name",
    "jobDefinition": "definition_name",
    "jobDefinitions": "definition_name",
    "jobId": "job",
    "jobs": "job",
}


@dataclass
class Probe:
    """One request and what its answer must be."""

    method: str
    path: str
    body: bytes
    query: str = ""
    #: the request must be refused (4xx): it targets a state-changing operation
    must_refuse: bool = False
    signed: bool = True
    #: the service whose SigV4 scope signs it: "batch", or "logs" for CloudWatch Logs on POST /
    service: str = "batch"
    headers: dict[str, str] | None = None
    label: str = ""


# --------------------------------------------------------------------------- value generation


class Generator:
    """Generates inputs from botocore shapes with a seeded RNG."""

    def __init__(self, rng: random.Random, names: dict[str, str]) -> None:
        self.rng = rng
        self.names = names  # known resource names and ARNs, so handlers get past lookups sometimes

    def text(self) -> str:
        r = self.rng.random()
        if r < 0.4:
            return self.rng.choice(list(self.names.values()))
        if r < 0.7:
            return "".join(self.rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(8))
        return self.rng.choice(WILD_STRINGS)

    def valid(self, shape: Shape, depth: int = 0) -> Any:
        """A value of ``shape``'s type within the model's bounds."""
        kind = shape.type_name
        meta = shape.metadata
        if kind == "structure":
            value = {}
            required = set(meta.get("required", ()))
            for name, member in shape.members.items():
                if member.serialization.get("location"):
                    continue  # bound to path or query: the body value would be overwritten
                if name in REFERENCES and self.rng.random() < 0.6:
                    # An existing resource, so handlers get past their lookups to the rest.
                    known = self.names[REFERENCES[name]]
                    value[name] = [known] if member.type_name == "list" else known
                elif name in required or (depth < 3 and self.rng.random() < 0.3):
                    value[name] = self.valid(member, depth + 1)
            return value
        if kind == "list":
            count = max(meta.get("min", 0), 1 if depth < 4 else 0)
            return [self.valid(shape.member, depth + 1) for _ in range(count)]
        if kind == "map":
            return {self._bounded_text(shape.key): self.valid(shape.value, depth + 1)}
        if kind == "string":
            if "enum" in meta:
                return self.rng.choice(meta["enum"])
            return self._bounded_text(shape)
        if kind in ("integer", "long"):
            low, high = INT_BOUNDS[kind]
            low, high = max(low, meta.get("min", low)), min(high, meta.get("max", high))
            return self.rng.choice([max(low, 0), min(high, 1), low, high, self.rng.randint(low, high)])
        if kind in ("float", "double"):
            return self.rng.choice([0.0, 1.5, 100.0])
        if kind == "boolean":
            return self.rng.random() < 0.5
        raise AssertionError(f"no generator for {kind}")

    def _bounded_text(self, shape: Shape) -> str:
        text = self.text()
        low, high = shape.metadata.get("min", 0), shape.metadata.get("max", 1 << 30)
        text = text[:high]
        return text + "x" * max(0, low - len(text))

    def wrong_type(self, shape: Shape) -> Any:
        """A value of a JSON type ``shape`` refuses (never null: a null member means "absent")."""
        kind = shape.type_name
        candidates: list[Any] = [17, "seventeen", True, [1, "a"], {"fuzz": 1}, 1.5]
        refused: dict[str, Callable[[Any], bool]] = {
            "string": lambda v: not isinstance(v, str),
            "integer": lambda v: isinstance(v, bool) or not isinstance(v, int),
            "long": lambda v: isinstance(v, bool) or not isinstance(v, int),
            "float": lambda v: isinstance(v, bool) or not isinstance(v, int | float),
            "double": lambda v: isinstance(v, bool) or not isinstance(v, int | float),
            "boolean": lambda v: not isinstance(v, bool),
            "list": lambda v: not isinstance(v, list),
            "map": lambda v: not isinstance(v, dict),
            "structure": lambda v: not isinstance(v, dict),
        }
        return self.rng.choice([v for v in candidates if refused[kind](v)])

    def out_of_bounds(self, shape: Shape) -> Any | None:
        """A value of the right type that the model's bounds refuse, or None if it has none."""
        kind = shape.type_name
        meta = shape.metadata
        options: list[Any] = []
        if kind in ("integer", "long"):
            low, high = INT_BOUNDS[kind]
            options += [high + 1, low - 1, 10**30, -(10**30)]
            if "max" in meta:
                options.append(meta["max"] + 1)
            if "min" in meta:
                options.append(meta["min"] - 1)
        elif kind in ("float", "double"):
            if "max" in meta:
                options.append(meta["max"] + 1)
            if "min" in meta:
                options.append(meta["min"] - 1)
        elif kind == "string":
            if "enum" in meta:
                options.append("FUZZ_NOT_IN_ENUM")
            if "max" in meta:
                options.append("x" * (meta["max"] + 1))
            if meta.get("min", 0) > 0:
                options.append("")
        elif kind in ("list", "map") and "max" in meta:
            item = self.valid(shape.member if kind == "list" else shape.value, 4)
            if kind == "list":
                options.append([item] * (meta["max"] + 1))
            else:
                options.append({f"k{i}": item for i in range(meta["max"] + 1)})
        return self.rng.choice(options) if options else None

    def wild(self, shape: Shape) -> Any:
        """A value of the right type that is merely odd: read operations may accept it."""
        kind = shape.type_name
        if kind == "string":
            return self.rng.choice([*WILD_STRINGS, "\U0001f600" * 300, "z" * 30_000, self.text()])
        if kind in ("integer", "long"):
            low, high = INT_BOUNDS[kind]
            return self.rng.choice([0, -1, low, high, self.rng.randint(low, high)])
        if kind in ("float", "double"):
            return self.rng.choice([0, -1.0, 1e300, -1e300, 5e-324])
        if kind == "list":
            # Up to ~3 MB: some bodies go past the server's 1 MiB cap and must be refused as such.
            return self.rng.choice([[], [self.wild(shape.member)] * self.rng.choice([1, 50, 101])])
        if kind == "map":
            return {self.text(): self.wild(shape.value)}
        return self.valid(shape, 3)


def member_paths(value: Any, shape: Shape, path: tuple = ()) -> Iterator[tuple[tuple, Shape]]:
    """Every (path, shape) in a generated value, the value itself first."""
    yield path, shape
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, item in value.items():
            if name in shape.members:
                yield from member_paths(item, shape.members[name], (*path, name))
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            yield from member_paths(item, shape.member, (*path, i))
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            yield from member_paths(item, shape.value, (*path, key))


def replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = replace(copy[head], rest, new)
    return copy


def get(value: Any, path: tuple) -> Any:
    for part in path:
        value = value[part]
    return value


# --------------------------------------------------------------------------- request generation


class Fuzzer:
    def __init__(self, seed: int, names: dict[str, str]) -> None:
        self.rng = random.Random(seed)
        self.gen = Generator(self.rng, names)
        self.names = names
        self.read_operations = [name for name in OPERATIONS if name.startswith(READ_PREFIXES)]

    def operation_path(self, operation: str) -> tuple[str, str, str]:
        """(method, path, query) for ``operation`` with its labels and query members filled in."""
        http = operation_model(operation).http
        template = http["requestUri"]
        arn = self.rng.choice(
            [*self.names.values(), "arn:aws:batch:us-east-1:1:nothing/x", "\u00e9", "x" * 300, "a\x00b"]
        )
        path = template.replace("{resourceArn}", urllib.parse.quote(arn, safe=""))
        query = ""
        if self.rng.random() < 0.15:
            # Batch binds no query member but tagKeys: the rest must be ignored, however odd.
            query = self.rng.choice(JUNK_QUERIES)
        if operation == "UntagResource":
            keys = self.rng.choice([["k"], ["a", "b"], ["x" * 200], [f"k{i}" for i in range(60)], [], ["\x00"]])
            query = urllib.parse.urlencode([("tagKeys", k) for k in keys])
        return http["method"], path, query

    def broken_body(self, operation: str, service: str = "batch") -> tuple[bytes, str]:
        """A body the model refuses for ``operation``, and how it was broken."""
        shape = operation_model(operation, service).input_shape
        value = self.gen.valid(shape)
        paths = list(member_paths(value, shape))
        how = self.rng.choice(
            ["wrong_type", "unknown_member", "surrogate", "nul", "surrogate_key", "bounds", "missing", "raw"]
        )
        if how == "raw":
            return self.rng.choice(BAD_BODIES), "raw"
        if how == "missing":
            required = [(p, s) for p, s in paths if s.type_name == "structure" and s.metadata.get("required")]
            required = [
                (p, s) for p, s in required if any(not s.members[r].serialization for r in s.metadata["required"])
            ]
            if required:
                where, structure = self.rng.choice(required)
                body_required = [r for r in structure.metadata["required"] if not structure.members[r].serialization]
                target = get(value, where)
                gone = self.rng.choice(body_required)
                value = replace(value, where, {k: v for k, v in target.items() if k != gone})
                return _dump(value), f"missing {where + (gone,)}"
            how = "unknown_member"
        if how == "bounds":
            bounded = [(p, s) for p, s in paths if p and self.gen.out_of_bounds(s) is not None]
            if bounded:
                where, member = self.rng.choice(bounded)
                return _dump(replace(value, where, self.gen.out_of_bounds(member))), f"bounds at {where}"
            how = "wrong_type"
        if how in ("surrogate", "nul"):
            strings = [(p, s) for p, s in paths if p and s.type_name == "string"]
            bad = self.rng.choice(["\ud800", "\udfff", "a\udc00b", "\ud83d"]) if how == "surrogate" else "a\x00"
            if strings:
                where, _ = self.rng.choice(strings)
                return _dump(replace(value, where, bad)), f"{how} at {where}"
            return _dump({**value, bad: "x"}), f"{how} as member name"
        if how == "surrogate_key":
            maps = [(p, s) for p, s in paths if s.type_name in ("map", "structure")]
            where, member = self.rng.choice(maps)
            target = get(value, where)
            key = self.rng.choice(["\ud800", "k\udbff", "\x00"])
            new = {**target, key: self.gen.valid(member.value, 4) if member.type_name == "map" else "x"}
            return _dump(replace(value, where, new)), f"bad key at {where}"
        if how == "wrong_type":
            typed = [(p, s) for p, s in paths if p]
            if typed:
                where, member = self.rng.choice(typed)
                return _dump(replace(value, where, self.gen.wrong_type(member))), f"wrong type at {where}"
            return self.rng.choice(BAD_BODIES), "raw"
        # unknown member, at the top or in a nested structure
        structures = [(p, s) for p, s in paths if s.type_name == "structure"]
        where, _ = self.rng.choice(structures)
        new = {**get(value, where), "fuzzUnknownMember": self.gen.text()}
        return _dump(replace(value, where, new)), f"unknown member at {where}"

    def wild_body(self, operation: str, service: str = "batch", pinned: dict | None = None) -> tuple[bytes, str]:
        """A body of the right types with odd values, for read-only operations: about a third of
        the values odd, and ``nextToken`` (where the operation has one) mostly a forged token.
        ``pinned`` members, most of the time, keep the given value (None: left out), so the odd
        values reach past the first lookup."""
        shape = operation_model(operation, service).input_shape
        value = self.gen.valid(shape)
        if "nextToken" in shape.members and self.rng.random() < 0.7:
            value["nextToken"] = self.rng.choice(TOKENS)
        for where, member in list(member_paths(value, shape))[1:]:
            if where != ("nextToken",) and self.rng.random() < 0.35:
                # An earlier replacement may have removed this path.
                with contextlib.suppress(KeyError, IndexError, TypeError):
                    value = replace(value, where, self.gen.wild(member))
        if pinned and self.rng.random() < 0.7:
            value.update({k: v for k, v in pinned.items() if v is not None})
            value = {k: v for k, v in value.items() if k not in pinned or pinned[k] is not None}
        return _dump(value), "wild"

    def probes(self) -> Iterator[Probe]:
        operations = list(OPERATIONS)
        while True:
            r = self.rng.random()
            operation = self.rng.choice(operations)
            method, path, query = self.operation_path(operation)
            if r < 0.45:
                body, how = self.broken_body(operation)
                yield Probe(method, path, body, query, must_refuse=True, label=f"{operation}: {how}")
            elif r < 0.75:
                # Valid but odd input, only to operations that cannot change state.
                operation = self.rng.choice(self.read_operations)
                method, path, query = self.operation_path(operation)
                body, how = self.wild_body(operation)
                yield Probe(method, path, body, query, label=f"{operation}: {how}")
            elif r < 0.83:
                other = self.rng.choice([m for m in ("GET", "PUT", "DELETE", "PATCH", "POST") if m != method])
                # An empty body: on the tag paths another method is another operation, and with no
                # body that operation is refused or only reads.
                refuse = not (other == "GET" and "/tags/" in path)
                yield Probe(other, path, b"", query, must_refuse=refuse, label=f"{operation}: method {other}")
            elif r < 0.88:
                yield self.unknown_path()
            elif r < 0.92:
                yield self.native()
            elif r < 0.96:
                yield self.unauthenticated(method, path, query)
            else:
                yield self.logs()

    def logs(self) -> Probe:
        """A CloudWatch Logs request (JSON 1.1 on ``POST /``, logs-scoped signature): every one of
        its operations only reads, so odd input may succeed and broken input must be refused."""
        operation = self.rng.choice(LOGS_OPERATIONS)
        if self.rng.random() < 0.5:
            body, how = self.broken_body(operation, "logs")
            refuse = True
        else:
            # The one group genobatch serves, named one way only (naming it both ways is refused).
            pinned = {"logGroupName": self.names["log_group"], "logGroupIdentifier": None}
            body, how = self.wild_body(operation, "logs", pinned)
            refuse = False
        headers = {"X-Amz-Target": f"Logs_20140328.{operation}", "Content-Type": "application/x-amz-json-1.1"}
        return Probe(
            "POST", "/", body, must_refuse=refuse, service="logs", headers=headers, label=f"{operation}: {how}"
        )

    def unknown_path(self) -> Probe:
        path = self.rng.choice(
            [
                "/v1/",
                "/v1",
                "/v1/SubmitJob",
                "/v1/submitjob/extra",
                "/v1/tags/",
                "/v1/tags/a/b",
                "/genobatch/v1/nope",
                "/genobatch/v1/jobs",
                "/genobatch/v1/jobs/a/b/c",
                "/genobatch/v2/health",
                "/",
                "/%ff%fe",
                "//",
                "/v1/%ED%A0%80",
                "/x" * 2000,
                "/" + "".join(self.rng.choice(string.ascii_lowercase) for _ in range(12)),
            ]
        )
        method = self.rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
        if (method, path) == ("GET", "/"):
            method = "PUT"  # GET / is the web console (a redirect to its sign-in page), not an unknown path
        body = b"" if method == "GET" else b"{}"
        return Probe(method, path, body, must_refuse=True, label=f"unknown path {method} {path[:40]}")

    def native(self) -> Probe:
        job = self.rng.choice([self.names["job"], "no-such-job", "%ED%A0%80", "x" * 500])
        value = self.rng.choice(
            ["-1", "1e3", "%C2%B2", "%D9%A3", "9" * 40, "", "0", "3", "%00", "%ED%A0%80", "18446744073709551616"]
        )
        path, query = self.rng.choice(
            [
                (f"/genobatch/v1/jobs/{job}/logs", f"offset={value}"),
                (f"/genobatch/v1/jobs/{job}/logs", f"attempt={value}&offset=0"),
                (f"/genobatch/v1/jobs/{job}", f"x={value}"),
                ("/genobatch/v1/runs", f"run={value}"),
                ("/genobatch/v1/runs", f"tag={value}&trace=1"),
                ("/genobatch/v1/runs", f"queue={value}&run={value}"),
                ("/genobatch/v1/runs", "tag=%3D"),
            ]
        )
        return Probe("GET", path, b"", query, label=f"native {path[:50]}?{query[:40]}")

    def unauthenticated(self, method: str, path: str, query: str) -> Probe:
        choice = self.rng.random()
        if choice < 0.5:
            return Probe(method, path, b"{}", query, must_refuse=True, signed=False, label="unsigned")
        header = self.rng.choice(
            [
                "AWS4-HMAC-SHA256 Credential=nobody/20260101/us-east-1/batch/aws4_request, "
                "SignedHeaders=host, Signature=00",
                "AWS4-HMAC-SHA256 garbage",
                "Basic dXNlcjpwYXNz",
                "AWS4-HMAC-SHA256 Credential=\u00e9",
            ]
        )
        return Probe(
            method,
            path,
            b"{}",
            query,
            must_refuse=True,
            signed=False,
            headers={"Authorization": header},
            label="bad auth",
        )


BAD_BODIES: list[bytes] = [
    b"{",
    b"}",
    b"[]",
    b"[{}]",
    b'"string"',
    b"17",
    b"true",
    b"null",
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b"\xff\xfe{}",
    b'{"jobs": ["\xed\xa0\x80"]}',  # a surrogate encoded as UTF-8: not valid UTF-8
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b'{"a": 1, "a": {}}',
    b"\x00",
    b'{"\\ud800": 1}',
]


def _dump(value: Any) -> bytes:
    # ensure_ascii: lone surrogates go on the wire as \\uXXXX escapes, as a JSON client sends them.
    return json.dumps(value).encode()
