//! Examples of embedding Serin; see `examples/embed_engine.rs`. This library is empty on purpose.
