"""Registers the DeepHyper searchers with molplat. Imports no DeepHyper, so listing plugins stays cheap."""
from __future__ import annotations

import molplat
from molplat.specs import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CITATION = (
    "P. Balaprakash, M. Salim, T. D. Uram, V. Vishwanath, S. M. Wild, DeepHyper: Asynchronous Hyperparameter "
    "Search for Deep Neural Networks, 2018 IEEE 25th International Conference on High Performance Computing "
    "(HiPC), 42-51, doi:10.1109/HiPC.2018.00014"
)

#: more evaluations than a search of training runs ever finishes
MAX_EVALS = 100_000
#: a week, in minutes
MAX_MINUTES = 7 * 24 * 60.0


def common_settings() -> tuple[Setting, ...]:
    """What both searchers take: the space, the objective, the budget and the workers."""
    return (
        Setting("space", "dict", None, "pipeline keys to search, written plainly: \"trainer.lr\" = {low = 1e-4, "
                "high = 1e-2, log = true}, \"model.num_interactions\" = {low = 1, high = 4} (integers), "
                "\"model.hidden_channels\" = [32, 64, 128] (a choice)", required=True),
        Setting("objective", "str", "val_loss", "the validation metric to optimise: val_loss, val.TARGET.METRIC "
                "(mae, rmse, r2; accuracy, roc_auc), val.forces.mae, or val.METRIC with one target"),
        Setting("goal", "str", "auto", "minimise or maximise the objective (auto: maximise r2, accuracy and "
                "roc_auc, minimise the rest)", choices=("auto", "min", "max")),
        Setting("max_evals", "int", 20, "how many configurations to train and score (with a resumed search: in "
                "all)", minimum=1, maximum=MAX_EVALS),
        Setting("max_time", "float", None, "wall-clock budget of the search in minutes: no new trial starts "
                "after it (unset: only max_evals bounds it)", minimum=0.0, maximum=MAX_MINUTES,
                exclusive_minimum=True),
        Setting("workers", "int", 1, "trials trained at the same time", minimum=1, maximum=4096),
        Setting("evaluator", "str", "auto", "DeepHyper evaluator that runs trials: serial (one at a time, in this "
                "process), process (local worker processes), thread, or ray (workers across the nodes of the Ray "
                "cluster RAY_ADDRESS names; needs pip install ray); auto: serial for one worker, process for more",
                choices=("auto", "serial", "thread", "process", "ray")),
        Setting("seed", "int", 0, "seed of the searcher's sampling (each trial trains with [trainer] seed)",
                minimum=0, maximum=2**31 - 1),
        Setting("top", "int", 5, "how many of the best configurations the table shows", minimum=1, maximum=1000),
    )


CBO_SETTINGS = common_settings() + (
    Setting("initial_points", "int", 5, "random configurations before the surrogate model proposes any",
            minimum=1, maximum=MAX_EVALS),
    Setting("kappa", "float", 1.96, "UCB exploration weight: larger explores more", minimum=0.0, maximum=100.0),
)


@molplat.hookimpl
def molplat_searchers() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="cbo",
            kind="searcher",
            factory="molplat_deephyper.searcher:CBOSearcher",
            summary="DeepHyper centralized Bayesian optimization (random-forest surrogate, UCB acquisition)",
            settings=CBO_SETTINGS,
            citation=CITATION,
        ),
        ComponentSpec(
            name="random",
            kind="searcher",
            factory="molplat_deephyper.searcher:RandomSearcher",
            summary="DeepHyper random search: the baseline Bayesian optimization must beat",
            settings=common_settings(),
            citation=CITATION,
        ),
    ]
