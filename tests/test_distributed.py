"""ccmct.distributed: the one reader of torchrun's environment and the device choice of a rank."""

import pytest
import torch
import torch.distributed as dist

from ccmct.distributed import DistContext, barrier, resolve_device, shutdown, start
from ccmct.errors import CcmctError
from ccmct.inference import distributed as inference_distributed
from ccmct.training import distributed as training_distributed


@pytest.fixture
def no_torchrun(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_from_env_reads_torchrun_variables(no_torchrun):
    assert DistContext.from_env() == DistContext(0, 1, 0)
    no_torchrun.setenv("RANK", "3")
    no_torchrun.setenv("WORLD_SIZE", "4")
    no_torchrun.setenv("LOCAL_RANK", "1")
    context = DistContext.from_env()
    assert (context.rank, context.world_size, context.local_rank) == (3, 4, 1)
    assert context.enabled and not context.is_main and not context.initialised


@pytest.mark.parametrize("env, words", [({"RANK": "x"}, "RANK='x' is not an integer"),
                                        ({"RANK": "2", "WORLD_SIZE": "2"}, "inconsistent"),
                                        ({"WORLD_SIZE": "0"}, "inconsistent")])
def test_from_env_refuses_malformed_values(no_torchrun, env, words):
    for name, value in env.items():
        no_torchrun.setenv(name, value)
    with pytest.raises(CcmctError, match=words):
        DistContext.from_env()


def test_single_process_start_barrier_shutdown_are_no_ops(no_torchrun):
    context = start(torch.device("cpu"))
    assert context == DistContext() and not dist.is_initialized()
    barrier()
    shutdown(context)
    assert training_distributed.init_distributed() == DistContext()


def test_resolve_device_choices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(CcmctError, match="'cpu' or 'cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(CcmctError, match="no GPU"):
            resolve_device("cuda:1", DistContext(1, 2, 1))


def test_layers_read_state_from_the_one_module():
    assert inference_distributed.DistContext is DistContext and training_distributed.DistInfo is DistContext
    assert inference_distributed.start is start and inference_distributed.resolve_device is resolve_device
