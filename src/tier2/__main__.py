from tier2.cli import main

main()
