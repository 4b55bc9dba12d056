"""scikit-learn's Ridge regression on exactly the split trainkit uses, beside trainkit's model.

    python scripts/regression_baseline.py model=regression data=diabetes --train
    python scripts/regression_baseline.py model=regression data=regression_csv \\
        data.path=houses.csv data.target_column=price model.hidden=[64,64] --seeds 42 0 1 --train

The arguments are train.py's overrides. For each seed (the split follows it) the DataModule
gives its splits, standardised as trainkit trains on them (training-split statistics); Ridge is
fitted on the training split with its alpha chosen on the validation split (as trainkit picks its
best checkpoint there), and its test MSE, RMSE and R2 are printed in the target's units. With
--train, trainkit trains on the same config in-process and its figures are printed beside them.
"""

from __future__ import annotations

from typing import Any

from text_baseline import compare, datamodule

ALPHAS = (1e-6, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1000.0)


def ridge(overrides: list[str]) -> dict[str, Any]:
    """Test MSE, RMSE and R2 (target units) of Ridge, its alpha picked by validation MSE."""
    import torch
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_squared_error, r2_score

    from trainkit.data.tabular import TabularRegressionDataModule

    dm = datamodule(overrides)
    if not isinstance(dm, TabularRegressionDataModule):
        raise SystemExit(
            f"error: {type(dm).__name__} is not a regression dataset; use data=diabetes, linear "
            "or regression_csv (scripts/text_baseline.py compares text classifiers)."
        )
    dm.setup()
    split = {name: (x.double().numpy(), y.double()) for name, (x, y) in dm.splits.items()}
    (x, y), (x_val, y_val), (x_test, y_test) = split["train"], split["val"], split["test"]
    models = {a: Ridge(alpha=a).fit(x, y.numpy()) for a in ALPHAS}  # every split is non-empty
    alpha = min(models, key=lambda a: mean_squared_error(y_val, models[a].predict(x_val)))
    truth = dm.to_target_units(y_test).numpy()
    pred = dm.to_target_units(torch.from_numpy(models[alpha].predict(x_test))).numpy()
    mse = float(mean_squared_error(truth, pred))
    return {
        "ridge mse": mse,
        "ridge rmse": mse**0.5,
        "ridge r2": float(r2_score(truth, pred)),
        "alpha": f"{alpha:g}",
    }


def trainkit_figures(summary: dict[str, Any]) -> dict[str, float]:
    test = summary["test"]  # what trainkit's Regressor logs
    return {
        "trainkit mse": test["rmse"] ** 2,
        "trainkit rmse": test["rmse"],
        "trainkit r2": test["r2"],
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    return compare(argv, __doc__, ridge, trainkit_figures)


if __name__ == "__main__":
    main()
