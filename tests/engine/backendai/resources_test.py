"""check-presets read into Resources: the least of the keypair's, the project's and the group's remaining."""

from __future__ import annotations

import asyncio
import math

import pytest
from engine.backendai.emulator_capacity import install as install_capacity

from fasttrack_gitops.core.pipeline.model import Resources
from fasttrack_gitops.core.scheduler import UNLIMITED_MEM
from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.resources import check_presets, held, least, parse_check_presets

GIB = 1 << 30

# The shape of 23.09's answer (api/resource.py check_presets), project resource visibility off.
ANSWER = {
    "keypair_limits": {"cpu": "Infinity", "mem": "Infinity", "cuda.shares": "Infinity"},
    "keypair_using": {"cpu": "1", "mem": "1073741824", "cuda.shares": "0"},
    "keypair_remaining": {"cpu": "Infinity", "mem": "Infinity", "cuda.shares": "Infinity"},
    "group_limits": {"cpu": "NaN", "mem": "NaN", "cuda.shares": "NaN"},
    "group_using": {"cpu": "NaN", "mem": "NaN", "cuda.shares": "NaN"},
    "group_remaining": {"cpu": "NaN", "mem": "NaN", "cuda.shares": "NaN"},
    "scaling_group_remaining": {"cpu": "5", "mem": "17179869184", "cuda.shares": "1.5"},
    "scaling_groups": {
        "default": {
            "using": {"cpu": "1", "mem": "1073741824", "cuda.shares": "0"},
            "remaining": {"cpu": "1", "mem": "8589934592", "cuda.shares": "0"},
        },
        "gpu": {
            "using": {"cpu": "0", "mem": "0", "cuda.shares": "0"},
            "remaining": {"cpu": "4", "mem": "8589934592", "cuda.shares": "1.5"},
        },
    },
    "presets": [],
}


def test_each_group_gets_its_remaining_and_nan_or_infinity_means_no_limit():
    found = parse_check_presets(ANSWER)
    assert found.remaining["default"] == Resources(cpu=1.0, mem=8 * GIB, accelerators=(("cuda.shares", 0.0),))
    assert found.remaining["gpu"] == Resources(cpu=4.0, mem=8 * GIB, accelerators=(("cuda.shares", 1.5),))
    assert found.remaining[None] == Resources(cpu=5.0, mem=16 * GIB, accelerators=(("cuda.shares", 1.5),))
    assert found.limits == Resources(cpu=math.inf, mem=UNLIMITED_MEM, accelerators=(("cuda.shares", math.inf),))
    assert found.using["default"] == {"cpu": 1.0, "mem": float(GIB), "cuda.shares": 0.0}


def test_the_keypair_and_the_project_cap_what_a_group_has():
    answer = dict(
        ANSWER, keypair_remaining={"cpu": "3", "mem": "Infinity"}, group_remaining={"cpu": "NaN", "mem": "2147483648"}
    )
    answer["keypair_limits"] = {"cpu": "4"}
    found = parse_check_presets(answer)
    assert found.remaining["gpu"] == Resources(cpu=3.0, mem=2 * GIB, accelerators=(("cuda.shares", 1.5),))
    assert found.limits == Resources(cpu=4.0, mem=UNLIMITED_MEM, accelerators=(("cuda.shares", math.inf),))


@pytest.mark.parametrize("answer", [None, [], {"presets": []}, dict(ANSWER, keypair_remaining={"cpu": "lots"})])
def test_an_answer_of_another_shape_is_a_value_error(answer):
    with pytest.raises(ValueError, match="check-presets|keypair_remaining"):
        parse_check_presets(answer)


def test_least_keeps_only_the_accelerators_every_capacity_has():
    a = Resources(cpu=2.0, mem=4 * GIB, accelerators=(("cuda.shares", 1.0),))
    b = Resources(cpu=math.inf, mem=UNLIMITED_MEM)
    assert least(a, b) == Resources(cpu=2.0, mem=4 * GIB)


def test_sessions_we_still_think_pending_hold_what_the_managers_using_says_is_held():
    one = Resources(cpu=1.0, mem=GIB)
    assert held([one], [one, one], [one], {"cpu": 2.0, "mem": 2.0 * GIB}) == [one, one]
    assert held([], [one], [one], {"cpu": 1.0, "mem": float(GIB)}) == []  # another job's session holds it


def test_the_emulator_answers_as_the_manager_does(session_emulator, make_client):
    install_capacity(session_emulator, {"default": {"cpu": 2}, "gpu": {"cpu": 4}}, keypair_limits={"cpu": 5})

    async def main():
        async with make_client(session_emulator) as client:
            found = await check_presets(client)
            with pytest.raises(errors.BackendAIError, match="Unknown project"):
                await check_presets(client, group="nobody")
            with pytest.raises(errors.BackendAIError, match="Unknown scaling group"):
                await check_presets(client, scaling_group="nowhere")
            return found

    found = asyncio.run(main())
    assert found.remaining["default"].cpu == 2.0 and found.remaining["gpu"].cpu == 4.0
    assert found.remaining[None].cpu == 5.0  # both groups, capped by the keypair
    assert found.limits.cpu == 5.0
