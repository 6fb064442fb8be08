"""From files and the official open-data services to letters and passages: the first steps of the pipeline.

`sources/` fetches letters; `reading` reads files and folders (`formats` per file type, `metadata` from the text);
`pages` and `cleaning` turn the raw text into paragraphs; `letter` is the model; `chunking` cuts passages;
`ministries` reads who sent a letter. Imports only qa.core (docs/architecture.md)."""
