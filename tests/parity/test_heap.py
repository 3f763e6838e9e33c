"""parity.heap: a full collection and a freeze once many modules have arrived, none otherwise."""

import gc
import sys
import types

from parity import heap


def test_freezes_after_many_new_modules_and_not_again(monkeypatch):
    monkeypatch.setattr(heap, "_modules_at_freeze", len(sys.modules))
    assert heap.freeze_if_imported() is False  # nothing new: no collection, no freeze
    names = [f"_heap_test_module_{i}" for i in range(heap._NEW_MODULES)]
    for name in names:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    frozen_before = gc.get_freeze_count()
    survivor = [[i] for i in range(100)]  # alive and tracked (lists): they move to the permanent generation
    assert heap.freeze_if_imported() is True
    assert gc.get_freeze_count() >= frozen_before + len(survivor)
    assert heap.freeze_if_imported() is False  # the same modules do not trigger a second freeze
    gc.unfreeze()  # give the rest of this test process its collector back
