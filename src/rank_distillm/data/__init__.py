"""Stage 1, data: TREC files, text files, collection formats, ir_datasets access,
texts by id, downloads and the demo's generated collections."""
