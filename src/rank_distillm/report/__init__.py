"""What a researcher publishes: the model-zoo and TIREx tables, their formats,
plots, report files and model cards."""
