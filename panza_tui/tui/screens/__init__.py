"""One screen per module: the sent-mail browser and the compose screen."""
