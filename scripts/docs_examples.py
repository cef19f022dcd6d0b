#!/usr/bin/env python3
"""Runs the shell examples of README.md and docs/*.md in order, in one bash session, against a
live server (scripts/docs-examples.sh starts it), and checks each block's printed output.

Markdown conventions (the extra words after the language are invisible on GitHub):
- every ```sh block runs, in document order, README.md first, then the docs in DOCS order;
  variables and background jobs carry over from block to block, as in a terminal;
- ```sh skip — shown, not run (the block says why; e.g. `make run`, which this run replaces);
- ```sh allow-errors — curl may answer 4xx (the block shows an error on purpose);
- a fenced block whose info string ends in ` output` (```json output, ```text output) right
  after a ```sh block is what that block must print: line by line, where `...` inside a line
  stands for any text and a line of just `...` for any number of lines;
- other shell languages (```bash, ```shell, ```console) are refused, so no example escapes.

Inside the blocks, `curl` fails on a 4xx/5xx answer (`--fail-with-body`) unless the block allows
errors; addresses 127.0.0.1:<port> of DOCS_PORTS (e.g. "8080=18180,9000=18181") are rewritten to
this run's ports, `target/release/` to this build's binaries (DOCS_TARGET), and `scripts/` to the
repository's scripts (blocks run in a work directory of their own).

Usage: docs_examples.py <repo root> <work dir>. Exit 1 on the first failing block.
"""

import os
import re
import subprocess
import sys

DOCS = [
    "README.md",
    "docs/native-api.md",
    "docs/doors.md",
    "docs/postman.md",
    "docs/operations.md",
    "docs/configuration.md",
    "docs/security.md",
    "docs/testing.md",
    "docs/web-client.md",
]
FENCE = re.compile(r"^```([a-z]*)((?: [a-z-]+)*)[ \t]*$")


def blocks(root):
    """(file, line, lang, words, text) of every fenced block, in order."""
    for name in DOCS:
        path = os.path.join(root, name)
        if not os.path.exists(path):
            continue
        lines = open(path, encoding="utf-8").read().split("\n")
        i = 0
        while i < len(lines):
            m = FENCE.match(lines[i])
            if not m:
                i += 1
                continue
            start, lang, words = i + 1, m.group(1), m.group(2).split()
            body = []
            i += 1
            while i < len(lines) and lines[i] != "```":
                body.append(lines[i])
                i += 1
            i += 1
            yield name, start, lang, words, "\n".join(body)


def matches(expected, actual):
    """Whether `actual` has the lines of `expected`, `...` standing for any text."""
    pattern = ""
    for line in expected.rstrip("\n").split("\n"):
        line = line.rstrip()
        if line == "...":
            pattern += r"(?:[^\n]*\n)*?"
        else:
            pattern += ".*?".join(re.escape(part) for part in line.split("...")) + r"[ \t]*\n"
    actual = "\n".join(l.rstrip() for l in actual.rstrip("\n").split("\n")) + "\n"
    return re.fullmatch(pattern, actual) is not None


def rewrite(text, ports, target, root):
    for old, new in ports.items():
        text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
    # The project's scripts, as a reader at the repository's root runs them.
    text = re.sub(r"(?<![\w/.])scripts/", root.rstrip("/") + "/scripts/", text)
    return text.replace("target/release/", target.rstrip("/") + "/")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        expected = open(sys.argv[2], encoding="utf-8").read()
        actual = open(sys.argv[3], encoding="utf-8").read()
        sys.exit(0 if matches(expected, actual) else 1)
    root, work = sys.argv[1], sys.argv[2]
    ports = dict(p.split("=") for p in os.environ.get("DOCS_PORTS", "").split(",") if p)
    target = os.environ.get("DOCS_TARGET", os.path.join(root, "target/debug"))
    me = os.path.abspath(__file__)

    script = [
        "set -eE -o pipefail",
        "exec 3>&1 4>&2",
        "__allow=0",
        'curl() { if [ "$__allow" = 1 ]; then command curl "$@"; else command curl --fail-with-body "$@"; fi; }',
        'trap \'{ echo "docs-examples: FAILED at $__where (exit $?)"; echo "--- its output:"; '
        'cat "$__out" 2>/dev/null; echo "--- its stderr:"; cat "$__err" 2>/dev/null; } >&3 2>&4; exit 1\' ERR',
        "trap 'jobs -p | xargs -r kill 2>/dev/null || true' EXIT",
    ]
    ran, skipped, checked = 0, [], 0
    previous = None
    for n, (name, line, lang, words, text) in enumerate(blocks(root)):
        where = f"{name}:{line}"
        if lang in ("bash", "shell", "console", "zsh"):
            sys.exit(f"docs-examples: {where}: use ```sh for shell examples (this one would not run)")
        if words and words[-1] == "output":
            if previous is None:
                sys.exit(f"docs-examples: {where}: an output block must follow a ```sh block")
            exp = os.path.join(work, f"expected{n}")
            open(exp, "w", encoding="utf-8").write(rewrite(text, ports, target, root) + "\n")
            out = previous
            script.append(
                f'if ! python3 {me} --compare {exp} {out}; then echo "docs-examples: {where}: '
                f'the output differs"; echo "--- expected:"; cat {exp}; echo "--- got:"; cat {out}; '
                f'echo "--- stderr:"; cat {out}.err; exit 1; fi'
            )
            checked += 1
            previous = None
            continue
        previous = None
        if lang != "sh":
            continue
        if "skip" in words:
            skipped.append(where)
            continue
        out = os.path.join(work, f"out{n}")
        script += [
            f"__where={where!r}; __out={out}; __err={out}.err",
            f"__allow={1 if 'allow-errors' in words else 0}",
            f'echo "docs-examples: {where}"',
            "{",
            rewrite(text, ports, target, root),
            f"}} > {out} 2> {out}.err",
            f"sed 's/^/    /' {out}",
        ]
        ran += 1
        previous = out
    script.append(
        f'echo "docs-examples: {ran} blocks run, {checked} outputs checked, '
        f'{len(skipped)} skipped ({", ".join(skipped)}): all passed"'
    )
    path = os.path.join(work, "examples.sh")
    open(path, "w", encoding="utf-8").write("\n".join(script) + "\n")
    sys.exit(subprocess.call(["bash", path], cwd=work))


if __name__ == "__main__":
    main()
