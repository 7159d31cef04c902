"""The bootstrap loop in time: what is sent, in which order answers become data, when it ends."""
