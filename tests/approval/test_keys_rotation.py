"""``drkit keys rotate``: replacing the writer key needs two other people's approval of the
exact new public key; afterwards new snapshots are signed with it and the history signed by
the old key still verifies."""

from __future__ import annotations

import json
from typing import Any


def test_writer_key_rotation_goes_through_the_gate(project: Any) -> None:
    keys = project.root / "keys"
    old_pub = (keys / "writer.pub").read_text()
    old_key = (keys / "writer.key").read_bytes()
    project.snapshot("before")

    refused = project.run("keys", "rotate", ok=False)
    assert refused.exit_code == 3
    assert "drkit request keys" in refused.stderr or "approv" in refused.stderr
    assert (keys / "writer.key").read_bytes() == old_key  # nothing changed

    prepared = project.json("keys", "rotate", "--prepare")
    new_pub = prepared["prepared"]
    assert new_pub.startswith("drkit-ed25519:") and new_pub != old_pub.strip()
    # Preparing again keeps the same next key (the approved plan names it).
    assert project.json("keys", "rotate", "--prepare")["prepared"] == new_pub

    request_id = project.request("keys", "rotate", "--public-key", new_pub)
    project.approve(request_id, "bob")
    assert project.run("keys", "rotate", "--approval", request_id, ok=False).exit_code == 3
    project.approve(request_id, "carol")
    done = project.json("keys", "rotate", "--approval", request_id)
    assert done["new"] == new_pub and sorted(done["approved_by"]) == ["bob", "carol"]
    assert (keys / "writer.pub").read_text().strip() == new_pub
    retired = list(keys.glob("writer.retired-*.pub"))
    assert [p.read_text() for p in retired] == [old_pub]

    # New history is signed with the new key; the old history still verifies.
    project.snapshot("after")
    assert len(project.snapshots()) == 2
    check = project.run("--json", "check")
    assert json.loads(check.stdout)["ok"] is True
    # Single use: the request cannot rotate again.
    again = project.run("keys", "rotate", "--approval", request_id, ok=False)
    assert again.exit_code == 3
