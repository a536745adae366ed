"""The coordinator's link to its Flower run: the service drives jobs through a Grid whose
calls a relaying ServerApp performs on the SuperLink (`protos/.../grid_relay.proto`)."""
