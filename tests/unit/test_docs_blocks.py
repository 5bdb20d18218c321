"""Every ``bash`` block of README.md and docs/ has a plan in tests/e2e/docs_blocks.py (run as written,
with listed substitutions, or listed as not run with a reason), and every substitution still matches
its block: checked here in a second, so a new or edited command cannot slip past the docs test."""

from __future__ import annotations

from collections import Counter

from tests.e2e.docs_blocks import PLANS, blocks


def test_every_bash_block_has_exactly_one_plan_and_no_plan_is_stale():
    found = blocks()
    assert len(found) >= 10  # README's and docs/pipelines.md's blocks are found at all
    keys = Counter(b.key for b in found)
    assert [k for k, n in keys.items() if n > 1] == [], "two blocks start with the same line: make the first lines differ"
    missing = [f"{b.document}:{b.line}: {b.key}" for b in found if b.key not in PLANS]
    assert missing == [], "add these blocks to tests/e2e/docs_blocks.py PLANS"
    assert sorted(set(PLANS) - set(keys)) == [], "plans whose block no document has any more"


def test_every_substitution_matches_its_block_and_every_exception_says_why():
    for block in blocks():
        plan = PLANS[block.key]
        if plan.not_run is not None:
            assert len(plan.not_run) > 20, block.key
            continue
        script = plan.script(block, root="/r", registry="127.0.0.1:5000", venv="/v")  # raises when a text is gone
        assert "myregistry" not in script, f"{block.key}: a remote registry is left in the command"
        for sub in plan.substitutions:
            assert sub.reason.strip(), block.key


def test_output_blocks_match_with_ellipses_and_in_order():
    from tests.e2e.docs_blocks import Plan

    plan = Plan(not_run="shown output", output_of="cmd")
    block = "# settings for r/m:1\naz set --name <app> ... --mount-path /m\n"
    printed = "# settings for r/m:1\n# other\naz set --name <app> --custom-id model --mount-path /m\n"
    assert plan.matches(block, printed) == []
    assert plan.matches(block, printed.replace("/m\n", "/x\n")) == ["az set --name <app> ... --mount-path /m"]
    assert plan.matches("b\na\n", "a\nb\n") == ["a"]  # order matters


def test_commands_listed_as_not_run_are_still_documented():
    from tests.e2e.docs_blocks import NOT_RUN_ELSEWHERE, ROOT

    for (document, text), reason in NOT_RUN_ELSEWHERE.items():
        assert text in (ROOT / document).read_text(), f"{document} no longer has {text!r}: update NOT_RUN_ELSEWHERE"
        assert len(reason) > 20
