"""Sans-IO domain types and pure logic. Imports no HTTP, database, framework or vendor SDK."""
