"""molplat-mlflow: records molplat runs in an MLflow tracking store inside the run directory."""
