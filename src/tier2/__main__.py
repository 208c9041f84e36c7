from tier2.entrypoints.cli import main

main()
