"""Model providers: wire format (ChatModel), auth + client (Provider), capabilities (Profile)."""
