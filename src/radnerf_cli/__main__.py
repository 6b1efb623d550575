from radnerf_cli.cli import main

main()
