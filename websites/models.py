"""Web site clouds land here (roadmap item 5); the app exists so the layout is in place."""
