"""The runtime every driver and worker embeds: submission, ownership, values, lineage, generators, task records."""
