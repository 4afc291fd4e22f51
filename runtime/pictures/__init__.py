"""Heat-maps of gamma over the photo (Figure 3) and contact sheets of several configurations."""
