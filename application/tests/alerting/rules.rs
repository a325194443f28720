//! Each built-in rule, made to happen through the engine's own use cases.

