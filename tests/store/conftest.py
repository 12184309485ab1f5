import pytest

from emonet.data.partitions import single_task_sources
from emonet.extraction.runner import ExtractOptions, run_extract
from tests.helpers import make_task


@pytest.fixture(params=["zarr", "webdataset"])
def small_store(request, tmp_path):
    """A two-class task in a store of the parametrised format, cut into 32-frame blocks."""
    data, csvs = make_task(tmp_path, name="t", n_per_class=3, partitions=("train", "devel"))
    store = tmp_path / f"store-{request.param}"
    opts = ExtractOptions(
        store=store,
        data_path=data,
        sources=[single_task_sources("t", csvs["train"], csvs["devel"], None)],
        backend=request.param,
        workers=1,
        frames_per_shard=32,
    )
    run_extract(opts, notify=lambda m: None)
    return store
