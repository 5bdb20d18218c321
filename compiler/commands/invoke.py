"""``pkgc invoke``: POST a request to a running package: a JSON file, any file as it is (binary, CSV,
an image) with its content type, or a multipart form (``--form name=@file``, ``--form name=value``).

Exit codes: 0 answered 200, 2 bad input (a missing or unreadable file, a bad flag), 4 no answer or
another status."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from compiler.commands.run import host_name, port_number, route_path
from compiler.errors import SpecError, SpecProblem, VerifyError
from compiler.runtime.request_body import content_type_value


def register(sub) -> None:
    p = sub.add_parser("invoke", help="POST a request (a file, or a multipart form) to a running package's /score")
    p.add_argument("--port", type=port_number, default=5001)
    p.add_argument("--host", type=host_name, default="127.0.0.1")
    p.add_argument("--route", type=route_path, default="/score")
    p.add_argument("--request-file", metavar="F", help="the body: a JSON file as application/json, any other file as it is "
                   "with the content type its name suggests (or --content-type)")  # fmt: skip
    p.add_argument("--content-type", type=content_type_value, metavar="TYPE", help="the --request-file's content type")
    p.add_argument("--form", action="append", default=[], metavar="NAME=@FILE|NAME=VALUE",
                   help="a multipart/form-data part, as curl -F (a file: NAME=@FILE[;type=TYPE]; a file's text as a "
                   "field: NAME=<FILE); repeatable")  # fmt: skip
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--json", action="store_true", help="print {status, content_type, response} as one JSON object")
    p.set_defaults(func=invoke)


def request_body(args):
    """The body the flags describe; bad input (exit 2) before anything is sent."""
    from compiler.runtime.request_body import file_body, multipart_body, parse_form

    if bool(args.request_file) == bool(args.form):
        raise SpecError(SpecProblem("pkgc invoke", "", "give --request-file F or --form NAME=@FILE/NAME=VALUE (one of them)"))
    if args.form:
        if args.content_type:
            raise SpecError(SpecProblem("--content-type", "", "applies to --request-file; a form part says its type as NAME=@FILE;type=TYPE"))
        return multipart_body([parse_form(text) for text in args.form])
    return file_body(Path(args.request_file), args.content_type)


def invoke(args, options, reporter) -> int:
    from compiler.runtime.http import request

    body = request_body(args)
    url = f"http://{args.host}:{args.port}{args.route}"
    try:
        response = request(url, data=body.data, timeout=args.timeout, content_type=body.content_type)
    except OSError as exc:  # refused, reset, timed out: nothing (or nothing healthy) answers there
        reason = getattr(exc, "reason", exc)
        raise VerifyError(f"POST {url} failed: {reason}; is the package running (pkgc run IMAGE --port {args.port})?") from None
    text = response.body.decode("utf-8", "replace")
    if args.json:
        try:
            answer = json.loads(text)
        except ValueError:
            answer = text
        print(json.dumps({"status": response.status, "content_type": body.content_type.split(";")[0], "response": answer}))
    else:
        sys.stdout.write(text + "\n")
    if response.status != 200:
        raise VerifyError(f"POST {args.route} answered HTTP {response.status}")
    return 0
