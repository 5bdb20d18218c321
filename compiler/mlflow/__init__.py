"""MLflow models: read MLmodel, infer dependencies the way MLflow defines them, generate scoring."""
