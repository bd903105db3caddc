"""Hardware-in-the-loop layer: board backends, board wire protocol, simulator, recording and replay."""
