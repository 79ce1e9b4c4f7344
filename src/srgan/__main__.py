from srgan.cli.main import run

run()
