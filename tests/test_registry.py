from __future__ import annotations

import pytest

from ast_robot.registry import Registry


def test_registry_lookup_and_unknown_name_lists_known():
    reg: Registry = Registry("widget")
    reg.register("alpha")(1)
    reg.register("beta")(2)
    assert reg.get("alpha") == 1 and reg.names() == ["alpha", "beta"]
    with pytest.raises(ValueError) as info:
        reg.get("alpah")
    assert "unknown widget 'alpah'" in str(info.value)
    assert "did you mean 'alpha'" in str(info.value) and "['alpha', 'beta']" in str(info.value)


def test_registry_rejects_duplicate_names():
    reg: Registry = Registry("widget")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(2)
