# Login shells (`bash -l`, `docker compose exec dev bash -l`) get the package's
# virtualenv first on PATH too, as every other shell in the dev image does.
case ":$PATH:" in
    *":/opt/sidekick/bin:"*) ;;
    *) PATH="/opt/sidekick/bin:$PATH"; export PATH ;;
esac
export VIRTUAL_ENV=/opt/sidekick
