"""Models and vectors leaving Tingxie: the Export, Share on the Hub and Export embeddings
dialogs. Each asks, then hands the work to the engine worker and shows what it reports."""
