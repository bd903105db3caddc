"""lunar-fsw framework: bus, clock, process runtime, supervisor, fault protection."""
