"""The parts of the HTTP application that `treadle.server.create_app`
assembles: the API's route, signed log links, stored statistics and
insights, health and metrics, and the lifespan. Each finds the server's
services, authenticator, metrics and job runner in `app.state`."""
