"""The hierarchy on scripted step streams: schedules, windows, held subgoals, rewards, causality, state."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from hieros_lib.agents import Hieros, HierosConfig, HierosReplay, Subactor, SubactorConfig
from hieros_lib.errors import HierosError
from hieros_lib.testing import count_host_syncs

SIZE, A = 16, 3


def build(levels: int = 3, k: int = 4, num_envs: int = 2, seed: int = 0, **config: object) -> Hieros:
    torch.manual_seed(seed)
    level = SubactorConfig.tiny(world_model_preset="tiny", actor_critic=SubactorConfig.tiny().actor_critic)
    hieros_config = HierosConfig(
        levels=levels, k=k, level=level, sequence_length=4, batch_size=4, replay_capacity=400, **config
    )  # type: ignore[arg-type]
    return Hieros(hieros_config, obs_shape=(SIZE, SIZE, 3), num_actions=A, num_envs=num_envs)


def replay_of(agent: Hieros, seed: int = 0) -> HierosReplay:
    return HierosReplay(agent.config, num_envs=agent.num_envs, num_actions=A, seed=seed)


def train_call(agent: Hieros, replay: HierosReplay, call: int, gen: torch.Generator) -> dict[str, Any]:
    """What the trainer does at its training call ``call``: the due levels with data, one batch each."""
    due = agent.config.levels_due(call)
    batches = [replay.sample(i) if i in due and replay.ready(i) else None for i in range(len(agent.levels))]
    return agent.train_step(batches, generator=gen)


# Episode lengths per environment: environment 0 has episodes of 23, 9 and 30 steps, environment 1 of
# 6, 17 and 40 (so the two start their episodes at different times, and windows are cut short).
EPISODES = ((23, 9, 30), (6, 17, 40))


def scripted_stream(steps: int, num_envs: int = 2, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Steps of ``num_envs`` environments with the episode lengths above and known rewards."""
    g = torch.Generator().manual_seed(seed)
    out = []
    position = [0] * num_envs  # step within the current episode
    episode = [0] * num_envs
    for _ in range(steps):
        first = torch.tensor([position[e] == 0 for e in range(num_envs)])
        last = torch.tensor([position[e] == EPISODES[e][episode[e] % 3] - 1 for e in range(num_envs)])
        reward = torch.randint(0, 5, (num_envs,), generator=g).float() * (~first).float()
        out.append(
            {
                "obs": torch.randint(0, 256, (num_envs, SIZE, SIZE, 3), generator=g, dtype=torch.uint8),
                "reward": reward,
                "is_first": first,
                "is_last": last,
                "is_terminal": last & torch.tensor([episode[e] % 2 == 0 for e in range(num_envs)]),
            }
        )
        for e in range(num_envs):
            if last[e]:
                position[e], episode[e] = 0, episode[e] + 1
            else:
                position[e] += 1
    return out


def run(agent: Hieros, stream: list[dict[str, torch.Tensor]], *, mode: str = "eval", seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    state = agent.initial_state()
    history = []
    for step in stream:
        action, state, steps = agent.policy(step, state, mode=mode, generator=g)
        history.append((action, state, steps))
    return history


def test_which_level_acts_when_per_environment() -> None:
    agent = build()
    stream = scripted_stream(70)
    history = run(agent, stream)
    tau = [0, 0]
    for t, (step, (_, state, steps)) in enumerate(zip(stream, history, strict=True)):
        for e in range(2):
            tau[e] = 0 if step["is_first"][e] else tau[e] + 1
            assert int(state.step[e]) == tau[e]
            last = bool(step["is_last"][e])
            for i, level_step in enumerate(steps):
                expected = i == 0 or tau[e] % 4**i == 0 or last
                assert bool(level_step.mask[e]) == expected, (t, e, i)


def test_subgoals_are_held_between_the_steps_of_the_level_above() -> None:
    agent = build()
    stream = scripted_stream(70)
    history = run(agent, stream, mode="train")
    for i in range(1, 3):
        for t in range(1, len(history)):
            acted = history[t][2][i].mask
            before, after = history[t - 1][1].goals[i - 1], history[t][1].goals[i - 1]
            for e in range(2):
                if not acted[e]:
                    assert torch.equal(before[e], after[e]), (t, i, e)
                else:
                    assert torch.equal(after[e], history[t][2][i].data["action"][e].reshape(8, 8))
            # the lower level held that very subgoal when it acted at this step
            torch.testing.assert_close(history[t][2][i - 1].data["goal"], after)
            assert after.sum(-1).eq(1).all()  # one-hot: eight categoricals of eight


def test_a_level_observes_exactly_the_states_of_the_level_below_in_its_window() -> None:
    agent = build(k=4)
    stream = scripted_stream(60)
    history = run(agent, stream)
    features = [agent.level(0).model.features(h[1].levels[0].model) for h in history]
    width = agent.feature_dims[0]
    for e in range(2):
        since: list[torch.Tensor] = []  # level-0 states since level 1's last step
        for t, (step, (_, _, steps)) in enumerate(zip(stream, history, strict=True)):
            if step["is_first"][e]:
                since = []
            since.append(features[t][e])
            if steps[1].mask[e]:
                want = torch.zeros(4, width)
                window = torch.stack(since[-4:])
                want[4 - len(window) :] = window
                torch.testing.assert_close(steps[1].data["obs"][e], want.flatten(), msg=f"t={t} env={e}")
                since = []


def test_only_the_last_state_in_the_g5_ablation() -> None:
    agent = build(window="last")
    stream = scripted_stream(12)
    history = run(agent, stream)
    for t in (4, 8):
        feature = agent.level(0).model.features(history[t][1].levels[0].model)
        torch.testing.assert_close(history[t][2][1].data["obs"], feature)


def test_every_level_stores_all_of_the_environment_reward() -> None:
    agent = build()
    # the last step of the stream ends every episode, so no reward waits in a window
    stream = scripted_stream(80)
    stream[-1]["is_last"] = torch.ones(2, dtype=torch.bool)
    history = run(agent, stream)
    total = sum(step["reward"] for step in stream)
    for i in range(3):
        stored = sum(h[2][i].data["reward"] * h[2][i].mask.float() for h in history)
        torch.testing.assert_close(stored, total)
    # and the flags of a window cut short by an episode end are the environment's
    for (_, _, steps), step in zip(history, stream, strict=True):
        for i in range(3):
            cut = steps[i].mask & step["is_last"]
            assert torch.equal(steps[i].data["is_terminal"][cut], step["is_terminal"][cut])


def test_acting_is_causal() -> None:
    """Changing observations from step 20 on changes nothing any level saw or did before step 20."""
    agent = build()
    stream = scripted_stream(30)
    changed = [dict(s) for s in stream]
    for t in range(20, 30):
        changed[t]["obs"] = 255 - stream[t]["obs"]
    first, second = run(agent, stream, mode="train", seed=3), run(agent, changed, mode="train", seed=3)
    for t in range(20):
        assert torch.equal(first[t][0], second[t][0])
        for a, b in zip(first[t][2], second[t][2], strict=True):
            assert all(torch.equal(a.data[key], b.data[key]) for key in a.data)
    assert any(
        not torch.equal(first[t][2][0].data["obs"], second[t][2][0].data["obs"]) for t in range(20, 30)
    )


def test_one_level_is_the_single_level_agent() -> None:
    agent = build(levels=1, num_envs=2, seed=5)
    torch.manual_seed(5)
    single = Subactor(agent.config.level_config(0), obs_shape=(SIZE, SIZE, 3), action_shape=(A,))
    single.load_state_dict(agent.level(0).state_dict())
    stream = scripted_stream(15)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    state, level_state = agent.initial_state(), single.initial_state(2)
    for step in stream:
        action, state, _ = agent.policy(step, state, mode="train", generator=g1)
        level_action, level_state = single.policy(step, level_state, mode="train", generator=g2)
        assert torch.equal(action, level_action.argmax(-1)[:, 0])


def test_state_dict_round_trip_gives_the_same_actions_and_losses(tmp_path: object) -> None:
    first = build(seed=1)
    first_replay = replay_of(first, seed=1)
    stream = scripted_stream(40)
    g = torch.Generator().manual_seed(0)
    state = first.initial_state()
    for call, step in enumerate(stream):
        _, state, steps = first.policy(step, state, generator=g)
        first_replay.add(steps)
        train_call(first, first_replay, call, g)
    second, second_replay = build(seed=2), replay_of(first, seed=2)
    second.load_state_dict(copy.deepcopy(first.state_dict()))
    second.load_training_state_dict(copy.deepcopy(first.training_state_dict()))
    first_replay.save(tmp_path)  # type: ignore[arg-type]
    second_replay.load(tmp_path)  # type: ignore[arg-type]
    second_replay.load_state_dict(copy.deepcopy(first_replay.state_dict()))
    results = []
    for agent, replay in ((first, first_replay), (second, second_replay)):
        gen = torch.Generator().manual_seed(9)
        s = state
        actions, metrics = [], []
        for call, step in enumerate(scripted_stream(8, seed=5), start=len(stream)):
            action, s, steps = agent.policy(step, s, generator=gen)
            replay.add(steps)
            actions.append(action)
            metrics.append({k: float(v) for k, v in train_call(agent, replay, call, gen).items()})
        results.append((torch.stack(actions), metrics))
    assert torch.equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]
    assert any(key.startswith("level1/") for m in results[0][1] for key in m)


def test_the_cadence_is_a_pure_function_of_the_call_count() -> None:
    config = HierosConfig(levels=3, k=4)
    trained = [config.levels_due(call) for call in range(33)]
    assert [call for call, due in enumerate(trained) if 1 in due] == [0, 4, 8, 12, 16, 20, 24, 28, 32]
    assert [call for call, due in enumerate(trained) if 2 in due] == [0, 16, 32]
    assert all(0 in due for due in trained)
    agent = build(levels=2)
    with pytest.raises(HierosError, match="batches"):
        agent.train_step([None])  # one per level


def test_a_policy_state_for_any_number_of_environments() -> None:
    """One evaluation environment beside two training ones: the state decides N."""
    agent = build(levels=2, num_envs=2)
    stream = scripted_stream(6, num_envs=1)
    state, gen = agent.initial_state(1), torch.Generator().manual_seed(0)
    for step in stream:
        action, state, _ = agent.policy(step, state, generator=gen)
        assert action.shape == (1,)
    with pytest.raises(HierosError, match=r"is_first.*\(1,\)"):
        agent.policy(scripted_stream(1, num_envs=2)[0], state)


def test_parameter_counts_at_paper_size() -> None:
    """Appendix E reports 37.1M parameters for the three levels; ours are within 5% (numbers in the docs)."""
    config = HierosConfig()
    agent = Hieros(config, obs_shape=(64, 64, 3), num_actions=18, device="meta")
    counts = [sum(p.numel() for p in agent.level(i).parameters()) for i in range(3)]
    assert sum(counts) == sum(p.numel() for p in agent.parameters())
    assert abs(sum(counts) - 37.1e6) < 0.05 * 37.1e6, counts
    # level 0 decodes images; the higher levels encode and decode k = 4 states (h, z) of 256 + 32 * 32 each
    assert counts[1] > counts[0] and counts[1] > counts[2]  # level 1 has three critics, the top level two
    assert next(agent.level(1).model.encoder.parameters()).shape[-1] == 4 * (256 + 32 * 32)


def test_bad_input() -> None:
    agent = build(levels=2)
    step = scripted_stream(1)[0]
    state = agent.initial_state()
    with pytest.raises(HierosError, match="step"):
        agent.policy({"obs": torch.zeros(2, SIZE, SIZE, 3, dtype=torch.uint8)}, state)
    bad = {
        "is_last": torch.zeros(2, dtype=torch.int64),  # wrong dtype
        "is_terminal": torch.zeros(3, dtype=torch.bool),  # wrong shape for N = 2
        "reward": torch.zeros(2, dtype=torch.int64),  # not floating
        "obs": torch.zeros(2, SIZE, SIZE, 3),  # float images
    }
    for key, value in bad.items():
        with pytest.raises(HierosError, match=key):
            agent.policy({**step, key: value}, state)
    with pytest.raises(HierosError, match="reward"):
        agent.policy({**step, "reward": [0.0, 0.0]}, state)  # type: ignore[dict-item]
    with pytest.raises(HierosError, match="state"):
        agent.policy(step, None)  # type: ignore[arg-type]
    with pytest.raises(HierosError, match="is_first"):
        agent.policy(step, agent.initial_state(3))  # a state for another N
    with pytest.raises(HierosError, match="finite"):
        agent.policy({**step, "reward": torch.tensor([0.0, float("nan")])}, state)


def test_every_level_trains_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    level = SubactorConfig.tiny(world_model_preset="tiny", autocast="bfloat16")
    config = HierosConfig(levels=2, k=2, level=level, sequence_length=4, batch_size=4, replay_capacity=400)
    agent = Hieros(config, obs_shape=(SIZE, SIZE, 3), num_actions=A, num_envs=2)
    replay = replay_of(agent)
    state, gen = agent.initial_state(), torch.Generator().manual_seed(0)
    for step in scripted_stream(12, seed=1):
        _, state, steps = agent.policy(step, state, generator=gen)
        replay.add(steps)
    metrics = [train_call(agent, replay, call, gen) for call in range(2)]
    assert {"level0/autoencoder/loss", "level1/model/loss_total"} <= {k for m in metrics for k in m}
    assert all(float(v) == 0.0 for m in metrics for k, v in m.items() if k.endswith("nonfinite"))


def test_acting_reads_nothing_back_and_training_syncs_once_per_update() -> None:
    """policy() makes no host synchronisation; a training step makes one per update (the non-finite
    check of the world model, actor-critic and autoencoder losses), besides the optimisers' reads of
    their CPU step counters, which are not synchronisations and are left out here."""
    agent = build(levels=2, k=2)
    replay = replay_of(agent)
    state, gen = agent.initial_state(), torch.Generator().manual_seed(0)
    stream = scripted_stream(20, seed=2)
    for step in stream[:-1]:
        _, state, steps = agent.policy(step, state, generator=gen)
        replay.add(steps)
    with count_host_syncs() as calls:
        agent.policy(stream[-1], state, generator=gen, validate=False)
    assert calls == []
    batches = [replay.sample(0), replay.sample(1)]
    inside = 0
    optimizers = [opt for level in agent.levels for opt in level._optimizers.values()]
    with count_host_syncs() as calls:
        for opt in optimizers:
            original = opt.step

            def step(*args: object, _original: Any = original, **kwargs: object) -> Any:
                nonlocal inside
                before = len(calls)
                out = _original(*args, **kwargs)
                inside += len(calls) - before
                return out

            opt.step = step  # type: ignore[method-assign]
        metrics = agent.train_step(batches, generator=gen, validate=False)  # call 0: both levels train
    assert {"level0/nonfinite", "level1/nonfinite"} <= set(metrics)
    assert len(calls) - inside == 2 * 3, calls  # two levels, three updates each (each has an autoencoder)
