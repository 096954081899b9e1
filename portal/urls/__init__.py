"""URLconfs of the two sites. Each app contributes page and API URL modules per site."""
