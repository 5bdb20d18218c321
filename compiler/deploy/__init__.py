"""Deploy settings: what App Service or Kubernetes need to run a built package
(``--deploy-settings``), read from the image's ``io.pkgc.*`` labels (``settings``), and how a
readonly_mount package's model reaches the container (``model_volume``)."""
