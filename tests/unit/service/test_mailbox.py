"""The mailbox: system messages first, ordinary ones held while suspended, closing."""

from __future__ import annotations

from hotmesh.service._mailbox import Cast, Mailbox, System


def test_system_messages_jump_the_queue() -> None:
    box = Mailbox()
    box.put(Cast(1))
    box.put_system(System("get_state"))
    first = box.take(normal=True)
    assert isinstance(first, System)
    assert box.take(normal=True) == Cast(1)


def test_ordinary_messages_stay_queued_when_not_accepted() -> None:
    box = Mailbox()
    box.put(Cast(1))
    box.put_system(System("resume"))
    assert isinstance(box.take(normal=False), System)
    assert len(box) == 1


def test_closed_mailbox_refuses_and_returns_what_was_queued() -> None:
    box = Mailbox()
    box.put(Cast(1))
    assert box.close() == [Cast(1)]
    assert not box.put(Cast(2))
    assert not box.put_system(System("stop"))
